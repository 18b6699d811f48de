import ECICore

/// runc's command line, parsed the way runc's CLI (urfave/cli) reads it, to the depth ECI needs:
/// global flags, the command, and for the commands ECI intervenes in, their flags and the
/// container ID. The original arguments are kept so everything passes through unchanged.
public struct RuncCommandLine: Sendable, Equatable {
    /// Every argument after the program name, as given.
    public var arguments: [String]
    /// Global flags before the command, as (name without dashes, value) pairs; booleans have nil.
    public var globalFlags: [(name: String, value: String?)]
    /// The command (`create`, `start`, ...), or nil for none (`runc --version`, `runc --help`).
    public var command: String?
    /// The arguments after the command, as given.
    public var commandArguments: [String]

    /// runc's global flags: name -> takes a value.
    public static let globalFlagTable: [String: Bool] = [
        "debug": false, "log": true, "log-format": true, "root": true, "criu": true,
        "systemd-cgroup": false, "rootless": true, "help": false, "h": false, "version": false, "v": false,
    ]

    /// Flags ECI itself understands; they are removed before runc sees the command line.
    public static let eciGlobalFlagTable: [String: Bool] = ["eci-config": true]

    /// runc's commands.
    public static let commands: Set<String> = [
        "checkpoint", "create", "delete", "events", "exec", "features", "help", "h", "init", "kill", "list", "pause", "ps",
        "restore", "resume", "run", "spec", "start", "state", "update",
    ]

    /// Flags of the commands ECI intercepts: name -> takes a value.
    public static let commandFlagTables: [String: [String: Bool]] = [
        "create": [
            "bundle": true, "b": true, "console-socket": true, "pidfd-socket": true, "pid-file": true, "no-pivot": false,
            "no-new-keyring": false, "preserve-fds": true, "help": false, "h": false,
        ],
        "run": [
            "bundle": true, "b": true, "console-socket": true, "pidfd-socket": true, "pid-file": true, "no-pivot": false,
            "no-new-keyring": false, "preserve-fds": true, "detach": false, "d": false, "keep": false, "no-subreaper": false,
            "help": false, "h": false,
        ],
        "delete": ["force": false, "f": false, "help": false, "h": false],
    ]

    public static func == (lhs: RuncCommandLine, rhs: RuncCommandLine) -> Bool {
        lhs.arguments == rhs.arguments
    }

    /// Parses `arguments` (without the program name).
    public init(_ arguments: [String]) throws {
        self.arguments = arguments
        var flags: [(String, String?)] = []
        var index = 0
        while index < arguments.count {
            let arg = arguments[index]
            guard arg.hasPrefix("-"), arg != "-" else { break }
            if arg == "--" {
                index += 1
                break
            }
            let (name, inlineValue) = Self.splitFlag(arg)
            guard let takesValue = Self.globalFlagTable[name] ?? Self.eciGlobalFlagTable[name] else {
                throw ECIError(.invalidArgument, "flag provided but not defined: -\(name)")
            }
            if takesValue {
                if let inlineValue {
                    flags.append((name, inlineValue))
                } else {
                    guard index + 1 < arguments.count else { throw ECIError(.invalidArgument, "flag needs an argument: -\(name)") }
                    flags.append((name, arguments[index + 1]))
                    index += 1
                }
            } else {
                flags.append((name, inlineValue))
            }
            index += 1
        }
        globalFlags = flags
        if index < arguments.count {
            let command = arguments[index]
            guard Self.commands.contains(command) else {
                throw ECIError(.invalidArgument, "no such command: \(command)")
            }
            self.command = command
            commandArguments = Array(arguments[(index + 1)...])
        } else {
            command = nil
            commandArguments = []
        }
    }

    /// The last value of global flag `name`.
    public func globalValue(_ name: String) -> String? {
        globalFlags.last { $0.name == name }?.value
    }

    /// Whether boolean global flag `name` is set (present, and not `=false`).
    public func globalBool(_ name: String) -> Bool {
        guard let flag = globalFlags.last(where: { $0.name == name }) else { return false }
        return flag.value.map { $0 != "false" } ?? true
    }

    /// The arguments for the real runc: everything, minus ECI's own global flags.
    public var runcArguments: [String] {
        var out: [String] = []
        var index = 0
        var inGlobals = true
        while index < arguments.count {
            let arg = arguments[index]
            if inGlobals, arg.hasPrefix("-"), arg != "-", arg != "--" {
                let (name, inlineValue) = Self.splitFlag(arg)
                if Self.eciGlobalFlagTable[name] != nil {
                    index += inlineValue == nil ? 2 : 1
                    continue
                }
                out.append(arg)
                if Self.globalFlagTable[name] == true, inlineValue == nil, index + 1 < arguments.count {
                    out.append(arguments[index + 1])
                    index += 1
                }
            } else {
                inGlobals = false
                out.append(arg)
            }
            index += 1
        }
        return out
    }

    /// The parsed flags and positional arguments of an intercepted command.
    public struct CommandOptions: Sendable, Equatable {
        public var flags: [String: String]
        public var positionals: [String]

        public func value(_ names: String...) -> String? {
            for name in names { if let v = flags[name] { return v } }
            return nil
        }

        public func bool(_ names: String...) -> Bool {
            names.contains { name in flags[name].map { $0 != "false" } ?? false }
        }
    }

    /// Parses the flags of `command` (one of `commandFlagTables`); urfave/cli stops at the first
    /// positional argument, so flags after the container ID are positionals, as for runc.
    public func commandOptions() throws -> CommandOptions {
        guard let command, let table = Self.commandFlagTables[command] else {
            throw ECIError(.internalError, "no flag table for command \(command ?? "(none)")")
        }
        var flags: [String: String] = [:]
        var index = 0
        let args = commandArguments
        while index < args.count {
            let arg = args[index]
            guard arg.hasPrefix("-"), arg != "-" else { break }
            if arg == "--" {
                index += 1
                break
            }
            let (name, inlineValue) = Self.splitFlag(arg)
            guard let takesValue = table[name] else {
                throw ECIError(.invalidArgument, "\(command): flag provided but not defined: -\(name)")
            }
            if takesValue {
                if let inlineValue {
                    flags[name] = inlineValue
                } else {
                    guard index + 1 < args.count else { throw ECIError(.invalidArgument, "\(command): flag needs an argument: -\(name)") }
                    flags[name] = args[index + 1]
                    index += 1
                }
            } else {
                flags[name] = inlineValue ?? "true"
            }
            index += 1
        }
        return CommandOptions(flags: flags, positionals: Array(args[index...]))
    }

    /// Splits "--name=value" / "-name" into name and inline value.
    public static func splitFlag(_ arg: String) -> (String, String?) {
        let trimmed = arg.hasPrefix("--") ? arg.dropFirst(2) : arg.dropFirst(1)
        if let eq = trimmed.firstIndex(of: "=") {
            return (String(trimmed[..<eq]), String(trimmed[trimmed.index(after: eq)...]))
        }
        return (String(trimmed), nil)
    }
}

/// Container IDs as runc accepts them; anything else (path separators, "..", empty) is refused
/// before it can become part of a state path.
public enum ContainerID {
    public static func validate(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 1024, id != ".", id != ".." else {
            throw ECIError(.invalidArgument, "invalid container id \"\(id)\"")
        }
        let allowed = id.unicodeScalars.allSatisfy { s in
            (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "+" || s == "-" || s == "."
        }
        guard allowed else { throw ECIError(.invalidArgument, "invalid container id \"\(id)\": only [A-Za-z0-9_+.-] are allowed") }
    }
}
