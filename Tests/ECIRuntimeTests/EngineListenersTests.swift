import ECICore
import ECIPolicy
import ECITestSupport
import Foundation
import Testing

@testable import ECIRuntime

@Suite struct EngineListenersParsingTests {
    @Test func listeningPathSocketsOnly() {
        let text = """
            Num       RefCount Protocol Flags    Type St Inode Path
            0000000000000000: 00000002 00000000 00010000 0001 01 1001 /run/docker.sock
            0000000000000000: 00000003 00000000 00000000 0001 03 1002 /run/docker.sock
            0000000000000000: 00000002 00000000 00010000 0001 01 1003 @/containerd-shim/abc.sock@
            0000000000000000: 00000002 00000000 00010000 0005 01 1004 /some dir/with space.sock
            0000000000000000: 00000002 00000000 00010000 0001 01 1005
            0000000000000000: 00000002 00000000 00000000 0002 01 1006 /dev/log
            garbage line
            """
        let entries = EngineListeners.parseUnixTable(text)
        #expect(entries == [.init(inode: 1001, path: "/run/docker.sock"), .init(inode: 1004, path: "/some dir/with space.sock")])
    }

    @Test func engineCommands() {
        for command in ["dockerd", "containerd", "containerd-shim", "buildkitd", "eci-agent"] { #expect(EngineListeners.isEngineCommand(command)) }
        for command in ["docker", "containerd-stres", "nginx", "runc", "eci-runc", "sh"] { #expect(!EngineListeners.isEngineCommand(command)) }
    }

    /// A real mountinfo line (Linux 6.18) of an overlay whose layers hold a comma and a colon:
    /// octal escapes undone by MountInfo, overlayfs's own by the policy.
    @Test func overlayLayersFromMountinfo() {
        let line = #"47 27 0:39 / /tmp/ovt/m rw,relatime - overlay overlay rw,lowerdir=/tmp/ovt/link:/tmp/ovt/a\134\054b:/tmp/ovt/c\134:d::/tmp/ovt/e,upperdir=/tmp/ovt/u,workdir=/tmp/ovt/w,uuid=on"#
        guard let entry = MountInfo.parse(line).first else {
            Issue.record("the line did not parse")
            return
        }
        let layers = StackedSourcePolicy.layers(fsType: entry.fsType, source: entry.source, superOptions: entry.superOptions)
        #expect(layers == .layers(["/tmp/ovt/link", "/tmp/ovt/a,b", "/tmp/ovt/c:d", "/tmp/ovt/e", "/tmp/ovt/u", "/tmp/ovt/w"]))
    }
}
