// eci-runc: ECI's isolated OCI runtime, used by containerd and dockerd exactly like runc.
import ECIRuntime
import Foundation

exit(RuntimeMain.main(arguments: CommandLine.arguments, environment: ProcessInfo.processInfo.environment))
