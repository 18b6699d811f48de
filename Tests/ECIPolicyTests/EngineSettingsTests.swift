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

    @Test func allowListEntriesAdmitByTagOrDigest() throws {
        let digest = "sha256:" + String(repeating: "a", count: 64)
        #expect(try ref("docker:cli").admits(ref("docker.io/library/docker:cli"), digests: []))
        #expect(try !ref("docker:cli").admits(ref("docker:dind"), digests: []))
        #expect(try ref("testcontainers/ryuk:*").admits(ref("testcontainers/ryuk:0.5.1"), digests: []))
        #expect(try !ref("testcontainers/ryuk:*").admits(ref("testcontainers/other:1"), digests: []))
        #expect(try ref("alpine@\(digest)").admits(ref("alpine:3.19"), digests: [digest]))
        // A disallowed image retagged with an allowed name keeps its own digest: refused.
        #expect(try !ref("alpine@\(digest)").admits(ref("alpine:3.19"), digests: ["sha256:" + String(repeating: "b", count: 64)]))
    }
}

@Suite struct CommandListTests {
    @Test func routesAreNamedLikeCLICommands() {
        #expect(CommandList.commandNames(method: "POST", path: "/v1.43/images/myimage/push?tag=latest") == ["push", "image push"])
        #expect(CommandList.commandNames(method: "GET", path: "/v1.43/containers/json?all=1") == ["ps", "container ls"])
        #expect(CommandList.commandNames(method: "POST", path: "/containers/create?name=x").contains("create"))
        #expect(CommandList.commandNames(method: "POST", path: "/v1.41/containers/abc/exec") == ["exec", "container exec"])
        #expect(CommandList.commandNames(method: "DELETE", path: "/v1.43/images/busybox") == ["rmi", "image rm"])
        #expect(CommandList.commandNames(method: "POST", path: "/v1.43/build?t=x").contains("build"))
        #expect(CommandList.commandNames(method: "GET", path: "/v1.43/volumes") == ["volume ls"])
        #expect(CommandList.commandNames(method: "HEAD", path: "/_ping") == ["_ping"])
    }

    @Test func aDenyListBlocksOnlyWhatItNames() {
        let list = CommandList(type: .deny, patterns: ["push", "image*"])
        let refusal = list.refusal(method: "POST", path: "/v1.43/images/myimage/push?tag=latest")
        #expect(refusal == "enhanced container isolation: docker command \"/v1.43/images/myimage/push?tag=latest\" is blocked; if you wish to allow it, configure the docker socket command list in the admin settings")
        #expect(list.refusal(method: "GET", path: "/v1.43/images/json") != nil, "image* covers image ls")
        #expect(list.refusal(method: "GET", path: "/v1.43/containers/json") == nil)
        #expect(list.refusal(method: "GET", path: "/_ping") == nil)
    }

    @Test func anAllowListBlocksEverythingElse() {
        let list = CommandList(type: .allow, patterns: ["ps", "container*"])
        #expect(list.refusal(method: "GET", path: "/v1.43/containers/json") == nil)
        #expect(list.refusal(method: "POST", path: "/v1.43/containers/abc/start") == nil, "container* covers container start")
        #expect(list.refusal(method: "POST", path: "/v1.43/images/create?fromImage=x") != nil)
        #expect(list.refusal(method: "POST", path: "/v1.43/unknown/route") != nil, "unknown routes are blocked by an allow list")
        #expect(list.refusal(method: "GET", path: "/v1.43/version") == nil)
    }
}
