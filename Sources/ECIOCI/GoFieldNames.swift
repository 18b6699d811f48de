import ECICore

/// How runc (Go's encoding/json) matches the keys of a JSON object to the fields it decodes
/// them into: an exact match first, else any key equal to the field's name whatever its ASCII
/// case (and with "ſ" for "s", "K", the Kelvin sign, for "k"), the last such key winning. ECI
/// reads keys exactly; so where an object holds two keys Go would read as one field, ECI and
/// runc could each act on a different one (attack rounds: `"Capabilities":null` after the
/// checked `"capabilities"` in an exec's process; `"Args"` next to the `"args"` eci-runc
/// rewrote in config.json, which runc then ran directly).
public enum GoFieldNames {
    /// The key as Go compares it with a field name (for field names, which are ASCII).
    public static func fold(_ key: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in key.unicodeScalars {
            switch scalar {
            case "A"..."Z": out.append(Unicode.Scalar(scalar.value + 0x20) ?? scalar)
            case "\u{17F}": out.append("s")
            case "\u{212A}": out.append("k")
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// Whether Go would decode `key` into the field named `field`.
    public static func matches(_ key: String, field: String) -> Bool { fold(key) == fold(field) }

    /// Throws when an object anywhere in `value` holds two keys Go would read as one field, or a
    /// key that is no runtime-spec field name exactly but that Go would read as one
    /// (`RuntimeSpecFields`: ECI reads `"mounts"`, runc would read a lone `"Mounts"` too).
    /// Objects at `RuntimeSpecFields.mapPaths` (Go maps, such as `annotations`: their keys are
    /// data, matched exactly) are not checked themselves; `what` names the document in the error.
    public static func checkUnambiguous(_ value: JSONValue, what: String, path: [String] = []) throws {
        switch value {
        case .object(let members):
            if !RuntimeSpecFields.mapPaths.contains(path) {
                let place = path.isEmpty ? "" : " in \(path.joined(separator: "."))"
                var seen: [String: String] = [:]
                for member in members {
                    let folded = fold(member.key)
                    if let other = seen[folded] {
                        throw ECIError(.invalidArgument, "\(what): the keys \"\(other)\" and \"\(member.key)\"\(place) are one field to runc")
                    }
                    seen[folded] = member.key
                    if !RuntimeSpecFields.names.contains(member.key), let field = RuntimeSpecFields.byFold[folded] {
                        throw ECIError(.invalidArgument, "\(what): runc reads the key \"\(member.key)\"\(place) as \"\(field)\"; spell it so")
                    }
                }
            }
            // runc decodes a field's value, and a map's (its entries); an unknown key's value
            // it skips whole, so that is not looked into.
            let isMap = RuntimeSpecFields.mapPaths.contains(path)
            for member in members where isMap || RuntimeSpecFields.names.contains(member.key) {
                try checkUnambiguous(member.value, what: what, path: path + [member.key])
            }
        case .array(let items):
            for item in items { try checkUnambiguous(item, what: what, path: path) }
        default:
            break
        }
    }
}
