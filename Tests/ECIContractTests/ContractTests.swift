import ECICore
import Glibc
import Testing

@testable import ECIContract

/// The host-guest contract: what each side sends, how the other reads it, and what happens when
/// the two speak different versions.
struct ContractTests {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    let report = PrepareReport(
        ok: true, probes: [ProbeResult(name: "overlay-over-idmapped-layers", ok: true, detail: "mounted")], settingsOrigin: .host, problems: [],
        overriddenEngineKeys: ["hosts"])

    var agentStatus: AgentStatus {
        AgentStatus(
            agent: "eci-agent 0.2", prepare: report, engine: EngineState(state: .running, version: "26.1.5"),
            containers: [ContainerStatus(id: "abc", name: "/watched", image: "busybox", state: "running", idRange: "1048576-1114111")])
    }

    var settings: SettingsInForce {
        SettingsInForce(
            origin: .host, socketMountImages: ["sha256:1234"], allowDerivedImages: false, commandList: CommandListInForce(type: "deny", commands: ["push"]))
    }

    @Test func requestsCarryTheVersionAndRoundTrip() throws {
        let bytes = ControlRequest(.status).encoded()
        #expect(text(bytes) == #"{"op":"status","version":1}"#)
        #expect(try ControlRequest.decode(bytes, from: "the host", receiver: "the agent") == ControlRequest(.status))
        for op in AdminOperation.allCases {
            #expect(try AdminRequest.decode(AdminRequest(op).encoded(), from: "x", receiver: "y").op == op)
        }
    }

    /// The receiving side refuses a request of another version (or of none) by name, before it
    /// reads anything else of it.
    @Test func aRequestOfAnotherVersionIsRefusedClearly() {
        for bytes in [#"{"op":"status","version":2}"#, #"{"op":"whatever-v2-calls-it","version":2}"#, #"{"op":"status"}"#] {
            #expect {
                _ = try ControlRequest.decode(Array(bytes.utf8), from: "the host", receiver: "eci-agent 0.2")
            } throws: { error in
                guard let error = error as? ECIError else { return false }
                return error.code == .protocolVersion && error.message.contains("control protocol") && error.message.contains("eci-agent 0.2")
            }
        }
        #expect {
            _ = try ControlRequest.decode(Array(#"{"op":"reboot","version":1}"#.utf8), from: "the host", receiver: "the agent")
        } throws: { ($0 as? ECIError)?.code == .malformedMessage && "\($0)".contains("unknown op \"reboot\"") }
        #expect {
            _ = try ControlRequest.decode(Array("status".utf8), from: "the host", receiver: "the agent")
        } throws: { ($0 as? ECIError)?.code == .malformedMessage }
    }

    @Test func repliesRoundTripUnderTheirOwnKey() throws {
        let bytes = try ContractReply.encode(agentStatus)
        #expect(text(bytes).hasPrefix(#"{"status":{"#) && text(bytes).hasSuffix(#","version":1}"#))
        #expect(try ContractReply.decode(AgentStatus.self, from: bytes, peer: "the agent", receiver: "ecibuild") == agentStatus)
        #expect(try ContractReply.decode(SettingsInForce.self, from: try ContractReply.encode(settings), peer: "a", receiver: "b") == settings)
        #expect(try ContractReply.decode(AgentHello.self, from: try ContractReply.encode(AgentHello(agent: "eci-agent 0.2")), peer: "a", receiver: "b").agent == "eci-agent 0.2")
        #expect(text(try ContractReply.encode(ShutdownAccepted())) == #"{"shutdown":{"ok":true},"version":1}"#)
        // A reply to another request is not taken for this one's.
        #expect { _ = try ContractReply.decode(SettingsInForce.self, from: bytes, peer: "a", receiver: "b") } throws: { ($0 as? ECIError)?.code == .malformedMessage }
    }

    /// The requesting side refuses a reply of another version, and raises the peer's refusal of
    /// its own version with the peer's words.
    @Test func aReplyOfAnotherVersionIsAClearError() throws {
        for bytes in [#"{"status":{},"version":2}"#, #"{"agent":"eci-agent 0.1","containers":[]}"#] {
            #expect {
                _ = try ContractReply.decode(AgentStatus.self, from: Array(bytes.utf8), peer: "the VM's agent", receiver: "ecibuild")
            } throws: { error in
                guard let error = error as? ECIError else { return false }
                return error.code == .protocolVersion && error.message.contains("the VM's agent") && error.message.contains("ecibuild speaks")
            }
        }
        let refusal = ContractReply.encode(ContractFailure(ECIError(.protocolVersion, "the host speaks control protocol 2; eci-agent 0.2 speaks 1")))
        #expect {
            _ = try ContractReply.decode(AgentStatus.self, from: refusal, peer: "the VM's agent", receiver: "ecibuild")
        } throws: { ($0 as? ECIError) == ECIError(.protocolVersion, "the host speaks control protocol 2; eci-agent 0.2 speaks 1") }
        let failure = ContractReply.encode(ContractFailure(code: "not-found", message: "no settings in force"))
        #expect {
            _ = try ContractReply.decode(SettingsInForce.self, from: failure, peer: "a", receiver: "b")
        } throws: { ($0 as? ECIError) == ECIError(.peerError, "no settings in force") }
    }

    /// `ecibuild status --format json` prints a `VMStatus`: the keys and shapes scripts and the
    /// e2e suite read stay as they were (compact, slashes unescaped, unknowns `null`).
    @Test func theStatusDocumentKeepsItsWireShape() throws {
        var status = VMStatus(
            phase: .ready, supervisorPid: 10, qemuPid: 11, accelerator: .tcg, image: "/images/eci", dockerHost: "unix:///vm/docker.sock",
            consoleLog: "/vm/console.log", uptimeSeconds: 42, error: nil, agent: .answered(agentStatus), settings: .answered(settings))
        let json = text(try ContractJSON.encode(status))
        for expected in [
            #""phase":"ready""#, #""name":"overlay-over-idmapped-layers","ok":true"#, #""origin":"host""#, #""sha256:1234""#,
            #""name":"/watched""#, #""idRange":"1048576-1114111""#, #""dockerHost":"unix:///vm/docker.sock""#, #""settingsOrigin":"host""#,
        ] {
            #expect(json.contains(expected), "\(expected) in \(json)")
        }
        #expect(!json.contains(#"\/"#) && !json.contains(": ") && !json.contains(", ") && !json.contains(#""error""#))
        #expect(try ContractJSON.decode(VMStatus.self, from: Array(json.utf8), what: "status") == status)

        status.qemuPid = nil
        status.agent = .silent
        status.settings = .failed("no settings in force (the boot step failed; see status)")
        let sparse = text(try ContractJSON.encode(status))
        #expect(sparse.contains(#""qemuPid":null"#) && sparse.contains(#""agent":null"#))
        #expect(sparse.contains(#""settings":{"error":"no settings in force (the boot step failed; see status)"}"#))
        #expect(try ContractJSON.decode(VMStatus.self, from: Array(sparse.utf8), what: "status") == status)

        let unknown = AgentStatus(
            agent: "a", prepare: nil, engine: EngineState(state: .stoppedByPrepare),
            containers: [ContainerStatus(id: "x", name: nil, image: nil, state: nil, idRange: nil)])
        let unknownJSON = text(try ContractJSON.encode(unknown))
        #expect(unknownJSON.contains(#""prepare":null"#) && unknownJSON.contains(#""idRange":null"#))
        #expect(unknownJSON.contains(#""state":"stopped (isolation can't be guaranteed)""#))
        var noOrigin = settings
        noOrigin.origin = nil
        #expect(text(try ContractJSON.encode(noOrigin)).contains(#""origin":"unknown""#))
        #expect(try ContractJSON.decode(SettingsInForce.self, from: try ContractJSON.encode(noOrigin), what: "settings") == noOrigin)
    }

    @Test func thePrepareReportFileRoundTrips() throws {
        let path = "/tmp/eci-contract-\(getpid())-prepare.json"
        defer { unlink(path) }
        try FileSystem.write(path, report.encoded(), mode: 0o644)
        #expect(try PrepareReport.read(path) == report)
        try FileSystem.write(path, Array("{".utf8), mode: 0o644)
        #expect { try PrepareReport.read(path) } throws: { ($0 as? ECIError)?.code == .invalidState }
    }

    @Test func theConstantsBothSidesShare() {
        #expect(ControlProtocol.guestPortPath(ControlProtocol.controlPortName) == "/dev/virtio-ports/eci.control")
        #expect(ControlProtocol.guestPortPath(ControlProtocol.tunnelPortName) == "/dev/virtio-ports/eci.tunnel")
        #expect(ControlProtocol.settingsFirmwarePath == "/sys/firmware/qemu_fw_cfg/by_name/opt/eci/admin-settings.json/raw")
    }
}
