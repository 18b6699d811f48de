import ECICore
import ECIOCI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// The entry point behind the `eci-runc` executable: parses runc's command line, sets up
/// logging the way runc does (so containerd shows ECI's errors), runs, and maps errors to a
/// one-line message and a non-zero exit.
public enum RuntimeMain {
    public static func main(arguments: [String], environment: [String: String]) -> Int32 {
        var destination = LogDestination(path: nil, format: .text)
        do {
            let commandLine = try RuncCommandLine(Array(arguments.dropFirst()))
            let format = commandLine.globalValue("log-format") ?? "text"
            guard let parsedFormat = LogDestination.Format(rawValue: format) else {
                throw ECIError(.invalidArgument, "invalid log-format: \(format)")
            }
            destination = LogDestination(path: commandLine.globalValue("log"), format: parsedFormat)
            let level: Logger.Level = commandLine.globalBool("debug") ? .debug : .info
            let handlerDestination = destination
            let log = Logger(label: "eci-runc") { label in LineLogHandler(label: label, destination: handlerDestination, level: level) }
            let configuration = try RuntimeConfiguration.load(path: commandLine.globalValue("eci-config"), environment: environment)
            return try IsolatedRuntime(commandLine: commandLine, configuration: configuration, environment: environment, log: log).run()
        } catch {
            let message = "eci-runc: \(error)"
            if destination.path != nil || destination.format == .json {
                destination.append(destination.render(level: .error, message: message, metadata: [:]))
            }
            if destination.path != nil || destination.format == .text {
                LogDestination(path: nil, format: .text).append(message)
            }
            return 1
        }
    }
}
