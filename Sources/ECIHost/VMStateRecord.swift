import ECICore
import Glibc
import Logging
import Synchronization

/// The supervisor's record of its VM (`VMState`), kept in memory and mirrored to the VM
/// directory's state file on every change, where `ecibuild run --detach` watches for `ready`.
final class VMStateRecord: Sendable {
    private let path: String
    private let logger: Logger
    private let state: Mutex<VMState>

    init(_ initial: VMState, path: String, logger: Logger) {
        self.path = path
        self.logger = logger
        state = Mutex(initial)
    }

    var current: VMState { state.withLock { $0 } }

    /// Changes the record and writes it. The write happens under the lock so that the file
    /// always ends with the latest record, never an older one written late.
    func update(_ change: (inout VMState) -> Void) {
        state.withLock { record in
            change(&record)
            write(record)
        }
    }

    /// Writes the record as it is (the first time).
    func publish() throws {
        try state.withLock { try $0.write(path) }
    }

    func remove() { unlink(path) }

    private func write(_ record: VMState) {
        do { try record.write(path) } catch { logger.warning("can't write the VM state", metadata: ["error": "\(error)"]) }
    }
}
