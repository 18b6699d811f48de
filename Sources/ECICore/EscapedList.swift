/// Splits `text` at every `separator` not escaped by a backslash, undoing the escapes (`\:` is a
/// literal colon, `\\` a backslash): how overlayfs writes its layer lists in mountinfo. Nil when
/// the text ends in a lone backslash. Empty elements are kept; callers decide what they mean.
public func splitUnescaped(_ text: String, at separator: Character) -> [String]? {
    var elements: [String] = []
    var current = ""
    var escaped = false
    for ch in text {
        if escaped {
            current.append(ch)
            escaped = false
        } else if ch == "\\" {
            escaped = true
        } else if ch == separator {
            elements.append(current)
            current = ""
        } else {
            current.append(ch)
        }
    }
    guard !escaped else { return nil }
    elements.append(current)
    return elements
}
