import ECIContract
import ECICore
import Foundation
import Testing

@testable import ECIHost

/// The host's side of the contract: the admin socket's protocol, the status text, and the
/// KVM verdict.
struct HostContractTests {
    let status = VMStatus(
        phase: .ready, supervisorPid: 10, qemuPid: 11, accelerator: .tcg, image: "/images/eci", dockerHost: "unix:///vm/docker.sock",
        consoleLog: "/vm/console.log", uptimeSeconds: 42, error: nil,
        agent: .answered(
            AgentStatus(
                agent: "eci-agent 0.2",
                prepare: PrepareReport(
                    ok: true, probes: [ProbeResult(name: "overlay-over-idmapped-layers", ok: true, detail: "fine"), ProbeResult(name: "fuse", ok: false, detail: "no /dev/fuse")],
                    settingsOrigin: .defaults, problems: [], overriddenEngineKeys: []),
                engine: EngineState(state: .running, version: "26.1.5"),
                containers: [ContainerStatus(id: "0123456789abcdef", name: "/sleeper", image: "eci-busybox", state: "running", idRange: "1048576-1114111")])),
        settings: .answered(SettingsInForce(origin: .defaults, socketMountImages: [], allowDerivedImages: false, commandList: CommandListInForce(type: "deny", commands: []))))

    var handlers: AdminServer.Handlers {
        let status = self.status
        return AdminServer.Handlers(status: { status }, stop: {})
    }

    @Test func theAdminSocketAnswersTypedRequestsAndRefusesOtherVersions() throws {
        let reply = AdminServer.reply(to: AdminRequest(.status).encoded(), handlers: handlers)
        #expect(try ContractReply.decode(VMStatus.self, from: reply, peer: "the supervisor", receiver: "test") == status)
        let stop = AdminServer.reply(to: AdminRequest(.stop).encoded(), handlers: handlers)
        #expect(try ContractReply.decode(StopAccepted.self, from: stop, peer: "the supervisor", receiver: "test").stopping)
        for request in [#"{"op":"status","version":7}"#, "status"] {
            let refused = AdminServer.reply(to: Array(request.utf8), handlers: handlers)
            #expect(throws: ECIError.self) { _ = try ContractReply.decode(VMStatus.self, from: refused, peer: "the supervisor", receiver: "test") }
        }
        let versioned = AdminServer.reply(to: Array(#"{"op":"status","version":7}"#.utf8), handlers: handlers)
        #expect {
            _ = try ContractReply.decode(VMStatus.self, from: versioned, peer: "the supervisor", receiver: "test")
        } throws: { ($0 as? ECIError)?.code == .protocolVersion && "\($0)".contains("control protocol 7") }
    }

    @Test func theStatusTextNamesProbesSettingsAndRanges() {
        let text = VMStatusText.render(status)
        #expect(text.contains("VM:          ready (tcg, up 42 s)"))
        #expect(text.contains("agent:       eci-agent 0.2, engine running"))
        #expect(text.contains("settings:    from defaults; socket mounts: none; command list: deny []"))
        #expect(text.contains("  probe overlay-over-idmapped-layers: ok") && text.contains("  probe fuse: FAILED: no /dev/fuse"))
        #expect(text.contains("  0123456789ab  eci-busybox  running  ids 1048576-1114111"))
        var silent = status
        silent.agent = .silent
        #expect(VMStatusText.render(silent).hasSuffix("agent:       not answering"))
        silent.agent = .failed("the VM's agent speaks control protocol 2; ecibuild speaks 1")
        #expect(VMStatusText.render(silent).hasSuffix("agent:       the VM's agent speaks control protocol 2; ecibuild speaks 1"))
    }

    @Test func aGuestRanWhenItsInstructionPointerLeftTheResetVector() {
        #expect(!KVMProbe.leftResetVector("EAX=00000000 EBX=00000000\nESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000\nEIP=0000fff0 EFL=00000002"))
        #expect(KVMProbe.leftResetVector("EIP=0000b7b9 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0"))
        #expect(KVMProbe.leftResetVector("RAX=0000000000000000\nRIP=ffffffff81000000 RFL=00000246"))
        #expect(!KVMProbe.leftResetVector("no registers here"))
    }

    /// The verdict is an outcome, not a race against a clock: the same machine gets the same
    /// answer every time (here /dev/kvm may open while QEMU aborts at the first vCPU run).
    @Test func kvmDetectionGivesTheSameAnswerTwice() {
        #expect(Accelerator.detect(device: "/nonexistent/kvm").0 == .tcg)
        #expect(Accelerator.detect(qemu: "/nonexistent/qemu").0 == .tcg || !FileSystem.exists("/dev/kvm"))
        let first = Accelerator.detect()
        let second = Accelerator.detect()
        #expect(first.0 == second.0, "first: \(first.reason); second: \(second.reason)")
        print("KVM detection on this machine: \(first.0.rawValue) (\(first.reason))")
    }
}
