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
        // runc 1.1 and 1.2's exec flags (eci-runc needs the container ID: `LockedStart`).
        "exec": [
            "console-socket": true, "pidfd-socket": true, "cwd": true, "env": true, "e": true, "tty": false, "t": false, "user": true,
            "u": true, "additional-gids": true, "g": true, "process": true, "p": true, "detach": false, "d": false, "pid-file": true,
            "process-label": true, "apparmor": true, "no-new-privs": false, "cap": true, "c": true, "preserve-fds": true, "cgroup": true,
            "ignore-paused": false, "help": false, "h": false,
        ],
    ]

    public static func == (lhs: RuncCommandLine, rhs: RuncCommandLine) -> Bool {
        lhs.arguments == rhs.arguments
    }

    /// One flag as found on the command line.
    struct ScannedFlag {
        var name: String
        var value: String?
        /// The argument indexes it occupies (one, or two with a separate value).
        var span: Range<Int>
    }

    /// Reads the leading flags of `args` the way urfave/cli does (`-f`, `--f`, `--f=v`,
    /// `--f v`; `--` or the first positional ends them). Returns the flags and the index of
    /// the first positional. An unknown flag or a missing value is an error naming it.
    static func scanFlags(_ args: [String], table: [String: Bool], context: String) throws -> (flags: [ScannedFlag], end: Int) {
        var flags: [ScannedFlag] = []
        var index = 0
        while index < args.count {
            let arg = args[index]
            guard arg.hasPrefix("-"), arg != "-" else { break }
            if arg == "--" { return (flags, index + 1) }
            let (name, inlineValue) = splitFlag(arg)
            guard let takesValue = table[name] else { throw ECIError(.invalidArgument, "\(context)flag provided but not defined: -\(name)") }
            if takesValue && inlineValue == nil {
                guard index + 1 < args.count else { throw ECIError(.invalidArgument, "\(context)flag needs an argument: -\(name)") }
                flags.append(ScannedFlag(name: name, value: args[index + 1], span: index..<index + 2))
                index += 2
            } else {
                flags.append(ScannedFlag(name: name, value: inlineValue ?? (takesValue ? nil : "true"), span: index..<index + 1))
                index += 1
            }
        }
        return (flags, index)
    }

    /// Parses `arguments` (without the program name).
    public init(_ arguments: [String]) throws {
        self.arguments = arguments
        let (flags, end) = try Self.scanFlags(arguments, table: Self.globalFlagTable.merging(Self.eciGlobalFlagTable) { $1 }, context: "")
        globalFlags = flags.map { ($0.name, $0.value) }
        if end < arguments.count {
            let command = arguments[end]
            guard Self.commands.contains(command) else {
                throw ECIError(.invalidArgument, "no such command: \(command)")
            }
            self.command = command
            commandArguments = Array(arguments[(end + 1)...])
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
        runcArguments(droppingCommandFlags: [])
    }

    /// runc's arguments with the command's `--bundle` pointing at `bundle` instead, and, when
    /// given, `--preserve-fds` set to `preserveFDs`.
    public func replacingBundle(with bundle: String, preserveFDs: Int? = nil) -> [String] {
        let dropped: Set<String> = preserveFDs == nil ? ["bundle", "b"] : ["bundle", "b", "preserve-fds"]
        return replacingCommandFlags(dropped, with: ["--bundle", bundle] + (preserveFDs.map { ["--preserve-fds", "\($0)"] } ?? []))
    }

    /// runc's arguments without the command's flags named `names` (with their values), and
    /// with `flags` right after the command instead.
    public func replacingCommandFlags(_ names: Set<String>, with flags: [String]) -> [String] {
        guard let command else { return runcArguments }
        let rest = runcArguments(droppingCommandFlags: names).dropFirst(runcGlobalCount + 1)
        return Array(runcArguments.prefix(runcGlobalCount)) + [command] + flags + rest
    }

    /// How many of `runcArguments` are global flags (and their values).
    private var runcGlobalCount: Int {
        runcArguments.count - commandArguments.count - (command == nil ? 0 : 1)
    }

    /// Everything but ECI's global flags and the named flags of the command.
    private func runcArguments(droppingCommandFlags names: Set<String>) -> [String] {
        let table = Self.globalFlagTable.merging(Self.eciGlobalFlagTable) { $1 }
        guard let (globals, end) = try? Self.scanFlags(arguments, table: table, context: "") else { return arguments }
        var dropped = Set(globals.filter { Self.eciGlobalFlagTable[$0.name] != nil }.flatMap { Array($0.span) })
        if !names.isEmpty, let command, let commandTable = Self.commandFlagTables[command],
            let (flags, _) = try? Self.scanFlags(commandArguments, table: commandTable, context: "")
        {
            let offset = end + 1
            dropped.formUnion(flags.filter { names.contains($0.name) }.flatMap { $0.span.map { $0 + offset } })
        }
        return arguments.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
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
        let (flags, end) = try Self.scanFlags(commandArguments, table: table, context: "\(command): ")
        var values: [String: String] = [:]
        for flag in flags { values[flag.name] = flag.value }
        return CommandOptions(flags: values, positionals: Array(commandArguments[end...]))
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
