import ECIPolicy
import Testing

@testable import ECIProcFS

@Suite struct EmulationTreeTests {
    let key = "0123456789ab-web"

    @Test func pathsResolveToStableIDsAndBack() throws {
        let container = try #require(EmulationTree.child(of: .root, named: key))
        let proc = try #require(EmulationTree.child(of: container, named: "proc"))
        let uptime = try #require(EmulationTree.child(of: proc, named: "uptime"))
        #expect(uptime == .file(key, .uptime))
        let id = EmulationTree.id(of: uptime)
        #expect(id != EmulationTree.rootID && id & 1 << 63 != 0)
        #expect(Set(EmulatedFile.allCases.map { EmulationTree.id(of: .file(key, $0)) }).count == EmulatedFile.allCases.count)

        // A restarted ecid has no table: it finds the key among the containers it knows.
        var fresh = EmulationTree.Resolver()
        let unknown = fresh.node(id, known: { [] })
        let found = fresh.node(id, known: { ["other", key] })
        let remembered = fresh.node(EmulationTree.id(of: proc), known: { [] })
        let between = fresh.node(EmulationTree.base(of: key) | 0x0f, known: { [] })
        let root = fresh.node(EmulationTree.rootID, known: { [] })
        #expect(unknown == nil)
        #expect(found == .file(key, .uptime))
        #expect(remembered == .procDirectory(key))
        #expect(between == nil)
        #expect(root == .root)
    }

    @Test func onlyKeysAndKnownNamesExist() {
        for name in ["", ".", "..", "a/b", "a\0b", String(repeating: "a", count: 256), "ä"] {
            #expect(EmulationTree.child(of: .root, named: name) == nil, "\(name)")
        }
        #expect(EmulationTree.child(of: .container(key), named: "sys") == nil)
        #expect(EmulationTree.child(of: .procDirectory(key), named: "kcore") == nil)
        #expect(EmulationTree.child(of: .file(key, .stat), named: "x") == nil)
        #expect(EmulationTree.entries(of: .root).isEmpty, "the root lists no container")
        #expect(EmulationTree.entries(of: .procDirectory(key)).map(\.name) == ["uptime", "meminfo", "cpuinfo", "stat", "swaps"])
        #expect(EmulationTree.attributes(of: .file(key, .meminfo), time: 0).mode == 0o100444)
    }

    @Test func resolverRefusesASecondKeyOnOneBase() {
        var resolver = EmulationTree.Resolver()
        let first = resolver.remember(key, live: { _ in true })
        let again = resolver.remember(key, live: { _ in true })
        let node = resolver.node(EmulationTree.base(of: key), known: { [] })
        #expect(first && again)
        #expect(node == .container(key))
    }
}
