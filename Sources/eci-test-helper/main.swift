// eci-test-helper: drives ECI's ID-range store from separate processes, for the allocator's
// concurrency and crash tests. Not installed; test-only.
//
//   eci-test-helper allocate STATE_DIR SUBUID SUBGID ID [HOLD_SECONDS]
//                                       prints the allocated base, then stays alive HOLD_SECONDS
//   eci-test-helper churn STATE_DIR SUBUID SUBGID PREFIX N    allocate/mark/release N times
import ECIRuntime
import Foundation
import Logging

let args = CommandLine.arguments
guard args.count >= 6 else {
    FileHandle.standardError.write(Data("usage: eci-test-helper allocate|churn STATE SUBUID SUBGID ID|PREFIX [N]\n".utf8))
    exit(2)
}
var configuration = RuntimeConfiguration()
configuration.stateDirectory = args[2]
configuration.subuidPath = args[3]
configuration.subgidPath = args[4]
configuration.defaultPoolContainers = 64
let store = RangeStore(configuration: configuration, log: Logger(label: "eci-test-helper") { StreamLogHandler.standardError(label: $0) })
let runcRoot = "/nonexistent-eci-test-root"
do {
    switch args[1] {
    case "allocate":
        let record = try store.allocate(ContainerKey(runcRoot: runcRoot, id: args[5]))
        FileHandle.standardOutput.write(Data("\(record.base)\n".utf8))
        if args.count > 6, let seconds = UInt32(args[6]) { sleep(seconds) }
    case "churn":
        let count = args.count > 6 ? Int(args[6]) ?? 10 : 10
        for i in 0..<count {
            let key = ContainerKey(runcRoot: runcRoot, id: "\(args[5])-\(i)")
            _ = try store.allocate(key, workDirectory: nil)
            try store.update(key) { $0.workDirectory = nil }
            try store.release(key)
        }
        print("ok")
    default:
        FileHandle.standardError.write(Data("unknown command \(args[1])\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(1)
}
