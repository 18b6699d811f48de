// eci-runc: ECI's isolated OCI runtime, used by containerd and dockerd exactly like runc.
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

exit(RuntimeMain.main(arguments: CommandLine.arguments, environment: ProcessInfo.processInfo.environment))
