/// Text that evt prints for a user to paste into a shell: `export` lines of `evt sandbox`, and
/// the commands its error messages suggest.
enum Shell {
    /// `text` as one shell word: as is when it holds only characters no shell treats
    /// specially, else in single quotes (a quote inside as `'\''`).
    static func quoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || ":/.,_-@".contains($0) } ? text
            : "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
