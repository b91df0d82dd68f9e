/// The declarative description of evt's command line. One table per command drives the
/// parser, `evt help CMD`, and (checked by tests) the man pages and shell completions.
public struct OptionSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Takes no value.
        case flag
        /// Takes one value; given twice with different values is a conflict.
        case value(String)
        /// Takes a value and may be given several times (`-X a=1 -X b=2`).
        case repeated(String)
    }

    /// What a shell may offer for the option's value or an operand.
    public enum Completion: Sendable, Equatable {
        case none
        case file
        case endpoint
        case choices([String])
    }

    public let long: String
    public let short: Character?
    public let kind: Kind
    public let help: String
    public let completion: Completion

    /// A flag: takes no value.
    public init(_ long: String, short: Character? = nil, _ help: String) {
        self.init(long, short: short, .flag, help)
    }

    public init(_ long: String, short: Character? = nil, _ kind: Kind, _ help: String,
                completion: Completion = .none) {
        self.long = long
        self.short = short
        self.kind = kind
        self.help = help
        self.completion = completion
    }

    public var takesValue: Bool { kind != .flag }

    public var metavar: String? {
        switch kind {
        case .flag: return nil
        case .value(let name), .repeated(let name): return name
        }
    }

    /// `-H, --header NAME=VALUE` as help and man pages show it.
    public var displayName: String {
        var text = short.map { "-\($0), " } ?? ""
        text += "--\(long)"
        if let metavar { text += " \(metavar)" }
        return text
    }
}

public struct OperandSpec: Sendable {
    public let name: String
    public let optional: Bool
    public let repeating: Bool
    public let completion: OptionSpec.Completion

    public init(_ name: String, optional: Bool = false, repeating: Bool = false,
                completion: OptionSpec.Completion = .none) {
        self.name = name
        self.optional = optional
        self.repeating = repeating
        self.completion = completion
    }
}

public struct CommandSpec: Sendable {
    public let name: String
    public let summary: String
    public let operands: [OperandSpec]
    public let options: [OptionSpec]
    /// Text after the option list in `evt help CMD`.
    public let notes: String
    /// Options of other commands that this one does without, by long name, and why: an
    /// unknown-option error gives the reason (`subscribe -f`: it always follows).
    public let without: [String: String]

    public init(name: String, summary: String, operands: [OperandSpec], options: [OptionSpec],
                notes: String = "", without: [String: String] = [:]) {
        self.name = name
        self.summary = summary
        self.operands = operands
        self.options = options + [CommandSpec.helpOption]
        self.notes = notes
        self.without = without
    }

    static let helpOption = OptionSpec("help", short: "h", "Show this help and exit.")

    public var usageLine: String {
        var parts = ["evt", name]
        for operand in operands {
            var word = operand.name
            if operand.repeating { word += "..." }
            if operand.optional { word = "[\(word)]" }
            parts.append(word)
        }
        parts.append("[OPTIONS]")
        return parts.joined(separator: " ")
    }

    public func option(named long: String) -> OptionSpec? {
        options.first { $0.long == long }
    }
}
