import ECIAgent
import ECICore
import ECIPolicy
import ECITestSupport
import Foundation
import Testing

extension Integration.AgentFilter {
    /// Attack review: a local volume whose `device` is a directory inside another named volume.
    /// The filter excepted it as "volume data"; the local driver mounts `device` by path as the
    /// VM's root, following the symlink a container planted there after the check, and the
    /// engine's `docker cp` then reads and writes the directory it points at (here a stand-in for
    /// `/etc/docker`: a restricted directory in ECI's state). No container is ever started on
    /// the volume, so eci-runc never sees it.
    @Test func volumeDeviceInsideAnotherVolumeCannotReachARestrictedDirectory() throws {
        let d = try DockerDaemon()
        defer { d.stop() }
        let f = try Filter(d)
        defer { f.stop() }
        let victim = d.sandbox.stateDirectory + "/attack-victim"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        try "engine-secret\n".write(toFile: victim + "/secret", atomically: true, encoding: .utf8)

        let made = try f.docker(["volume", "create", "vol"])
        #expect(made.status == 0, "\(made.stderr)")
        let clean = try f.docker(["run", "--rm", "--network", "none", "-v", "vol:/v", d.image, "mkdir", "/v/sub"])
        #expect(clean.status == 0, "\(clean.stderr)")
        let device = d.dataRoot + "/volumes/vol/_data/sub"
        let evil = try f.docker(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=\(device)", "evil"])
        #expect(evil.status != 0 && evil.stderr.contains(Self.restricted), "a volume device inside another volume was accepted: \(evil.stdout) \(evil.stderr)")
        if evil.status == 0 {
            // The container re-points the path the engine will mount by name.
            let plant = try f.docker(["run", "--rm", "--network", "none", "-v", "vol:/v", d.image, "sh", "-c", "rmdir /v/sub && ln -s \(victim) /v/sub"])
            #expect(plant.status == 0, "\(plant.stderr)")
            let created = try f.docker(["create", "--name", "thief", "--network", "none", "-v", "evil:/data", d.image, "true"])
            #expect(created.status == 0, "\(created.stderr)")
            let out = d.sandbox.directory + "/stolen"
            let read = try f.docker(["cp", "thief:/data/secret", out])
            let stolen = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            #expect(!stolen.contains("engine-secret"), "docker cp read the restricted directory through the volume: \(read.stderr)")
            try "planted\n".write(toFile: d.sandbox.directory + "/planted", atomically: true, encoding: .utf8)
            _ = try f.docker(["cp", d.sandbox.directory + "/planted", "thief:/data/planted"])
            #expect(!FileManager.default.fileExists(atPath: victim + "/planted"), "docker cp wrote into the restricted directory through the volume")
            _ = try f.docker(["rm", "-f", "thief"])
            _ = try f.docker(["volume", "rm", "evil"])
        }
        // The neighbour: the volume by name, as ever.
        let named = try f.docker(["run", "--rm", "--network", "none", "-v", "vol:/v", d.image, "ls", "/v"])
        #expect(named.status == 0, "\(named.stderr)")
        _ = try f.docker(["volume", "rm", "vol"])
        f.stopAndCheck()
    }
}

extension Integration.RuntimeLocks {
    /// eci-runc holds alone against annotations runc reads as its own configuration (the engine
    /// copies `HostConfig.Annotations` into the spec): a systemd unit property for the container's
    /// scope is refused before anything is allocated; an ordinary annotation still runs.
    @Test func runcConfigurationAnnotationsAreRefusedByTheRuntime() throws {
        let sandbox = try RuntimeSandbox()
        defer { sandbox.cleanup() }
        for (name, key) in [("systemd", "org.systemd.property.Conflicts"), ("criu", "org.criu.config"), ("bundle", "bundle")] {
            let bundle = try sandbox.makeBundle("ann-\(name)", script: "echo ran > /out/ran") { config in
                config["annotations"] = [key: "['docker.service']"]
            }
            let result = try sandbox.runtime(["run", "--bundle", bundle, "ann-\(name)"])
            #expect(result.status != 0 && result.stderr.contains("annotation"), "the annotation \(key) was not refused: \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: bundle + "/out/ran"), "a container with the annotation \(key) ran")
        }
        #expect(try sandbox.recordedContainers().isEmpty, "a refusal leaves no range behind")
        let ordinary = try sandbox.makeBundle("ann-ok", script: "echo ran > /out/ran") { config in
            config["annotations"] = ["com.example.team": "web"]
        }
        let result = try sandbox.runtime(["run", "--bundle", ordinary, "ann-ok"])
        #expect(result.status == 0 && (try? sandbox.output(ordinary, "ran")) == "ran", "an ordinary annotation: \(result.stderr)")
    }
}

extension Integration.RuntimeLocks {
    /// Hardening: a spec mount that is not a bind (here `type: overlay`) is never judged by
    /// eci-runc, and runc mounts it inside the container's namespaces while the VM's file tree is
    /// still visible there (before pivot_root): `lowerdir=` may name any VM directory, which the
    /// container then reads as its own (world-readable files; /etc here). No API field makes the
    /// engine emit such a mount; a stacked source is judged only when it is a bind.
    @Test func nonBindOverlayMountsOfVMPathsAreJudged() throws {
        let sandbox = try RuntimeSandbox()
        defer { sandbox.cleanup() }
        func overlay(_ name: String, lower: String) throws -> (String, TestSupport.Output) {
            let layers = sandbox.directory + "/" + name + "-layers"
            for dir in ["upper", "work"] { try FileManager.default.createDirectory(atPath: "\(layers)/\(dir)", withIntermediateDirectories: true) }
            _ = try TestSupport.run(["/bin/chown", "-R", "1048576:1048576", layers])
            let bundle = try sandbox.makeBundle(name, script: "ls /x/ > /out/listed 2>/dev/null; cat /x/seed > /out/seed 2>/dev/null; echo done > /out/done") { config in
                Self.privileged(&config)
                Self.addMount(&config, ["destination": "/x", "type": "overlay", "source": "overlay",
                                        "options": ["lowerdir=\(lower)", "upperdir=\(layers)/upper", "workdir=\(layers)/work"]])
            }
            return (bundle, try sandbox.runtime(["run", "--bundle", bundle, name]))
        }
        // /etc/docker is restricted by the default policy (the VM's allow-list refuses /etc too).
        let (refusedBundle, refused) = try overlay("ovl-etc", lower: "/etc/docker")
        #expect(refused.status != 0 && refused.stderr.contains("overlay layer /etc/docker"), "a non-bind overlay of /etc/docker: \(refused.status) \(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: refusedBundle + "/out/done"), "the container ran with the VM's /etc/docker as an overlay layer")
        #expect(try sandbox.recordedContainers().isEmpty, "a refusal leaves no range behind")
        // The neighbour: an overlay of a directory the policy allows still mounts.
        let lower = sandbox.directory + "/ovl-lower"
        try FileManager.default.createDirectory(atPath: lower, withIntermediateDirectories: true)
        try "seeded\n".write(toFile: lower + "/seed", atomically: true, encoding: .utf8)
        let (bundle, result) = try overlay("ovl-ok", lower: lower)
        #expect(result.status == 0 && (try? sandbox.output(bundle, "seed")) == "seeded", "an allowed overlay: \(result.stderr)")
    }
}
