/// The result of parsing one command's arguments against its `CommandSpec`.
public struct ParsedArguments: Sendable {
    public let spec: CommandSpec
    public private(set) var operands: [String] = []
    private var given: [String: [String]] = [:]

    init(spec: CommandSpec) { self.spec = spec }

    public func flag(_ long: String) -> Bool { given[declared(long)] != nil }
    /// The value of a single-valued option, if it was given.
    public func value(_ long: String) -> String? { given[declared(long)]?.last }
    /// Every value of a repeatable option, in command-line order.
    public func values(_ long: String) -> [String] { given[declared(long)] ?? [] }

    /// An option is looked up by a name its command's spec declares: any other name is never
    /// given, so the lookup would silently see nothing. Debug builds (the tests) stop on it.
    private func declared(_ long: String) -> String {
        assert(spec.option(named: long) != nil, "evt \(spec.name) looks up --\(long), which its CommandSpec does not declare")
        return long
    }

    /// A count option (`-c N`, `--ack-batch N`): a whole number of at least `minimum`.
    public func number(_ long: String, minimum: Int = 1, what: String = "events") throws -> Int? {
        try value(long).map { text in
            guard let number = Int(text), number >= minimum else {
                let short = spec.option(named: long)?.short.map { "-\($0)" } ?? "--\(long)"
                throw EvtError.usage("\(short) \(text): expected a number of \(what) (\(minimum) or more).", usage: spec.usageLine)
            }
            return number
        }
    }

    mutating func record(_ option: OptionSpec, _ value: String?) throws {
        let spelled = "--\(option.long)"
        switch option.kind {
        case .flag:
            given[option.long] = [""]
        case .repeated:
            given[option.long, default: []].append(value!)
        case .value:
            if let previous = given[option.long]?.last, previous != value! {
                throw EvtError.usage("\(spelled) was given twice (\(previous) and \(value!)); give it once.",
                             usage: spec.usageLine)
            }
            given[option.long] = [value!]
        }
    }

    mutating func appendOperand(_ word: String) { operands.append(word) }
}

/// Hand-rolled parsing, as kcat and swift-driver do it: options before or after operands,
/// `--opt value` and `--opt=value`, clustered short flags, `--` ends options, and a word of
/// the form `-DIGITS` is always a value or operand (`replay-from-offset topic:x -3`).
public enum ArgumentParser {
    public static func parse(_ arguments: [String], for spec: CommandSpec) throws -> ParsedArguments {
        var result = ParsedArguments(spec: spec)
        var index = 0
        var optionsEnded = false
        func nextValue(for option: OptionSpec, spelled: String) throws -> String {
            guard index + 1 < arguments.count else {
                throw EvtError.usage("\(spelled) needs a value (\(option.metavar ?? "VALUE")).", usage: spec.usageLine)
            }
            index += 1
            return arguments[index]
        }
        while index < arguments.count {
            let word = arguments[index]
            if optionsEnded || !isOption(word) {
                result.appendOperand(word)
            } else if word == "--" {
                optionsEnded = true
            } else if word.hasPrefix("--") {
                let body = word.dropFirst(2)
                let name: Substring
                let inlineValue: String?
                if let equals = body.firstIndex(of: "=") {
                    name = body[..<equals]
                    inlineValue = String(body[body.index(after: equals)...])
                } else {
                    name = body
                    inlineValue = nil
                }
                guard let option = spec.option(named: String(name)) else {
                    throw unknownOption("--\(name)", in: spec)
                }
                if option.takesValue {
                    let value = try inlineValue ?? nextValue(for: option, spelled: "--\(name)")
                    try result.record(option, value)
                } else {
                    if inlineValue != nil {
                        throw EvtError.usage("--\(name) takes no value.", usage: spec.usageLine)
                    }
                    try result.record(option, nil)
                }
            } else {
                // A cluster of short options: -fv, -n5, -n 5, -Xkey=value.
                var rest = Substring(word.dropFirst())
                while let letter = rest.first {
                    rest = rest.dropFirst()
                    guard let option = spec.options.first(where: { $0.short == letter }) else {
                        throw unknownOption("-\(letter)", in: spec)
                    }
                    if option.takesValue {
                        let value = rest.isEmpty ? try nextValue(for: option, spelled: "-\(letter)") : String(rest)
                        try result.record(option, value)
                        break
                    }
                    try result.record(option, nil)
                }
            }
            index += 1
        }
        return result
    }

    /// `-` (stdin) and `-DIGITS` are operands or values, never options.
    static func isOption(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word != "-" else { return false }
        let body = word.dropFirst()
        return !body.allSatisfy(\.isNumber)
    }

    static func unknownOption(_ spelled: String, in spec: CommandSpec) -> EvtError {
        var message = "unknown option \(spelled) for evt \(spec.name)."
        let letter = spelled.hasPrefix("--") ? nil : spelled.dropFirst().first
        // The option other commands have under this letter or name.
        let others = CommandTable.commands.filter { $0.name != spec.name }
        let elsewhere = others.flatMap(\.options).first { option in
            letter.map { option.short == $0 } ?? ("--" + option.long == spelled)
        }
        if let elsewhere, let why = spec.without[elsewhere.long] {
            message += " " + why
        } else if let letter {
            // One letter is no typo of a long name (-f is not short for --from).
            if let elsewhere {
                let owners = others.filter { $0.options.contains { $0.short == letter && $0.long == elsewhere.long } }
                message += " -\(letter) is --\(elsewhere.long) of " + owners.map { "evt \($0.name)" }.joined(separator: ", ") + "."
            }
        } else if let guess = closest(to: spelled, among: spec.options.map { "--\($0.long)" }) {
            message += " Did you mean \(guess)?"
        }
        message += " See: evt help \(spec.name)"
        return .usage(message, usage: spec.usageLine)
    }

    /// The candidate with the smallest edit distance, if it is close enough to be a typo.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word, $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let prefixMatch = candidates.first { $0.hasPrefix(word) && word.count >= 3 }
        if let prefixMatch { return prefixMatch }
        return best.1 <= max(2, word.count / 3) ? best.0 : nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1,
                                 previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
