import ECICore
import Testing

@testable import ECIPolicy

@Suite struct AdminSettingsTests {
    static let sample = #"""
        {"configurationFileVersion": 2, "otherSetting": {"value": 1},
         "enhancedContainerIsolation": {"value": true, "locked": true,
           "dockerSocketMount": {
             "imageList": {"images": ["docker.io/testcontainers/ryuk:*", "docker:cli",
                                      "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000"],
                           "allowDerivedImages": false},
             "commandList": {"type": "deny", "commands": ["push", "image*"]}}}}
        """#

    @Test func parsesECIsKeys() throws {
        let settings = try AdminSettings.parse(Array(Self.sample.utf8), source: "admin-settings.json")
        #expect(settings.socketMountImages.map(\.description) == [
            "docker.io/testcontainers/ryuk:*", "docker.io/library/docker:cli",
            "docker.io/library/alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ])
        #expect(!settings.allowDerivedImages && !settings.socketMountAnyImage)
        #expect(settings.commandList == CommandList(type: .deny, patterns: ["push", "image*"]))
    }

    @Test func absentSectionsMeanDefaults() throws {
        #expect(try AdminSettings.parse(Array("{}".utf8), source: "a") == .defaults)
        #expect(try AdminSettings.parse(Array(#"{"enhancedContainerIsolation":{"value":true}}"#.utf8), source: "a") == .defaults)
        let star = try AdminSettings.parse(Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["*"]}}}}"#.utf8), source: "a")
        #expect(star.socketMountAnyImage)
    }

    @Test(arguments: [
        "[]", "{", #"{"enhancedContainerIsolation": 1}"#,
        #"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":"docker:cli"}}}}"#,
        #"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["Not An Image"]}}}}"#,
        #"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"allowDerivedImages":"yes"}}}}"#,
        #"{"enhancedContainerIsolation":{"dockerSocketMount":{"commandList":{"type":"maybe"}}}}"#,
        #"{"enhancedContainerIsolation":{"dockerSocketMount":{"commandList":{"commands":[1]}}}}"#,
    ])
    func malformedSettingsAreErrors(_ text: String) {
        #expect(throws: ECIError.self) { try AdminSettings.parse(Array(text.utf8), source: "a") }
    }
}

@Suite struct ImageReferenceTests {
    func ref(_ text: String) throws -> ImageReference { try #require(ImageReference(text)) }

    @Test func namesAreNormalisedAsTheEngineDoes() throws {
        #expect(try ref("docker:cli").description == "docker.io/library/docker:cli")
        #expect(try ref("busybox").description == "docker.io/library/busybox:latest")
        #expect(try ref("localstack/localstack:3").description == "docker.io/localstack/localstack:3")
        #expect(try ref("ghcr.io/org/img:v1").description == "ghcr.io/org/img:v1")
        #expect(try ref("localhost:5000/img").description == "localhost:5000/img:latest")
        #expect(ImageReference("") == nil && ImageReference("UPPER/case") == nil && ImageReference("img@sha256:short") == nil)
    }

    @Test func allowListAdmitsByProvenanceNotByLocalName() throws {
        let a = "sha256:" + String(repeating: "a", count: 64)
        let b = "sha256:" + String(repeating: "b", count: 64)
        func policy(_ entries: [String], derived: Bool = true) throws -> SocketMountPolicy {
            SocketMountPolicy(settings: AdminSettings(socketMountImages: try entries.map(ref), socketMountAnyImage: false, allowDerivedImages: derived, commandList: CommandList(type: .deny, patterns: [])))
        }
        let pulledCLI = ImageFacts(id: b, repoTags: ["docker:cli"], repoDigests: ["docker@\(a)"], layers: ["l1", "l2"])
        // Tag entries: the name and tag asked for, and a registry digest under that repository.
        #expect(try policy(["docker:cli"]).admits(requested: ref("docker.io/library/docker:cli"), image: pulledCLI, bases: []))
        #expect(try !policy(["docker:cli"]).admits(requested: ref("docker:dind"), image: pulledCLI, bases: []))
        #expect(try policy(["docker:*"]).admits(requested: ref("docker:dind"), image: pulledCLI, bases: []))
        #expect(try !policy(["testcontainers/ryuk:*"]).admits(requested: ref("testcontainers/other:1"), image: pulledCLI, bases: []))
        // Retagging: a local image renamed docker:cli has no registry digest of docker: refused.
        let retagged = ImageFacts(id: "sha256:" + String(repeating: "c", count: 64), repoTags: ["docker:cli"], repoDigests: ["evil@\(a)"], layers: ["x"])
        #expect(try !policy(["docker:cli"], derived: false).admits(requested: ref("docker:cli"), image: retagged, bases: []))
        let imported = ImageFacts(id: "sha256:" + String(repeating: "c", count: 64), repoTags: ["docker:cli"], layers: ["x"])
        #expect(try !policy(["docker:cli"]).admits(requested: ref("docker:cli"), image: imported, bases: [pulledCLI]))
        // Digest entries: the manifest digest under that repository, or the image ID.
        #expect(try policy(["docker@\(a)"]).admits(requested: ref("whatever:1"), image: pulledCLI, bases: []))
        #expect(try policy(["local/tool@\(b)"]).admits(requested: ref("anything"), image: pulledCLI, bases: []))
        #expect(try !policy(["docker@\(b)"]).admits(requested: ref("docker:cli"), image: retagged, bases: []))
        // Derived images: local-only, layers extending an admitted local image's.
        let derived = ImageFacts(id: "sha256:" + String(repeating: "d", count: 64), repoTags: ["mine:1"], layers: ["l1", "l2", "l3"])
        #expect(try policy(["docker:cli"]).admits(requested: ref("mine:1"), image: derived, bases: [pulledCLI]))
        #expect(try !policy(["docker:cli"], derived: false).admits(requested: ref("mine:1"), image: derived, bases: [pulledCLI]))
        let unrelated = ImageFacts(id: derived.id, repoTags: ["mine:1"], layers: ["l9", "l2", "l3"])
        #expect(try !policy(["docker:cli"]).admits(requested: ref("mine:1"), image: unrelated, bases: [pulledCLI]))
        // A parent that is itself only a retag is no parent.
        #expect(try !policy(["docker:cli"]).admits(requested: ref("mine:1"), image: ImageFacts(id: derived.id, layers: ["x", "y"]), bases: [imported]))
    }
}
