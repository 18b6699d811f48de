import ECICore
import ECIOCI
import ECIPolicy
import ECIRuntime
import Glibc

/// The facts the filter's rules need, looked up for real: paths resolved in the VM's file
/// system, images asked of the engine over its raw socket.
public enum VMLookups {
    public static func make(engine: EngineClient, policy: SocketMountPolicy) -> EngineAPIPolicy.Lookups {
        EngineAPIPolicy.Lookups(
            resolve: { resolve($0) },
            image: { image($0, engine: engine) },
            candidateBases: { candidateBases(engine: engine, policy: policy) },
            container: { container($0, engine: engine) },
            symlinkFollowingMounts: { path in
                // A missing path is looked up through the mount that will contain it.
                guard let mounts = try? MountInfo.current() else { return [path] }
                return SymlinkBlindRoots.followingMounts(of: path, recursive: true, mounts: mounts)
            })
    }

    /// `GET /containers/{name}/json`: its image and the sources of its mounts (binds and volumes
    /// alike). Only names a container can have are asked (no `/`).
    static func container(_ name: String, engine: EngineClient) -> EngineAPIPolicy.ContainerFacts? {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }),
            let response = try? engine.get("/containers/\(name)/json"), response.isSuccess, let json = response.json,
            let mounts = json["Mounts"]?.arrayValue
        else { return nil }
        return EngineAPIPolicy.ContainerFacts(imageID: json["Image"]?.stringValue ?? "", mountSources: mounts.compactMap { $0["Source"]?.stringValue })
    }

    /// A name the engine could hold (nothing that would change the request path).
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy({ $0.isLetter || $0.isNumber || "._-/:@".contains($0) }) && name.unicodeScalars.allSatisfy(\.isASCII)
    }

    /// The canonical path: symlinks and `..` resolved as far as the path exists, the rest
    /// appended (the engine creates a missing bind source as a directory), with the resolver
    /// the runtime uses for its policy paths. A request's path is cleaned first (it is the
    /// client's text; the engine cleans it the same way) and kept as written when nothing of
    /// it resolves.
    static func resolve(_ raw: String) -> [String] {
        let path = lexicallyClean(raw)
        return [FileSystem.resolvingExistingPrefix(path) ?? path]
    }

    /// `GET /images/{name}/json`. Names with characters a reference can't hold are not asked.
    static func image(_ name: String, engine: EngineClient) -> ImageFacts? {
        guard isPlainName(name) else { return nil }
        guard let response = try? engine.get("/images/\(name)/json"), response.isSuccess, let json = response.json else { return nil }
        return facts(json)
    }

    static func facts(_ json: JSONValue) -> ImageFacts? {
        guard let id = json["Id"]?.stringValue else { return nil }
        func strings(_ value: JSONValue?) -> [String] { value?.arrayValue?.compactMap(\.stringValue) ?? [] }
        return ImageFacts(id: id, repoTags: strings(json["RepoTags"]), repoDigests: strings(json["RepoDigests"]), layers: strings(json["RootFS"]?["Layers"]))
    }

    /// Local images the allow-list names, inspected (their layers are needed).
    static func candidateBases(engine: EngineClient, policy: SocketMountPolicy) -> [ImageFacts] {
        guard let response = try? engine.get("/images/json"), response.isSuccess, let list = response.json?.arrayValue else { return [] }
        return list.compactMap { summary -> ImageFacts? in
            guard let id = summary["Id"]?.stringValue else { return nil }
            let brief = ImageFacts(
                id: id, repoTags: summary["RepoTags"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                repoDigests: summary["RepoDigests"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            guard policy.isCandidateBase(brief) else { return nil }
            return image(id, engine: engine)
        }
    }
}
