/// `evt group-create SOURCE GROUP [--from POSITION] [--reset [--shift-by N] [--dry-run]]`: a
/// Redis stream group (XGROUP CREATE … MKSTREAM, or SETID … ENTRIESREAD with --reset) or a
/// Kafka group's committed offsets.
public enum GroupCreateCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("group-create needs a SOURCE and a GROUP, e.g. evt group-create stream:orders billing.", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let group = arguments.operands[1]
        let from = try arguments.value("from").map { try Position.parse($0, option: "--from") } ?? .end
        let kafka = try arguments.kafkaSettings()
        guard source.has(.groups) else {
            throw EvtError.usage("groups exist for Redis streams and Kafka topics; \(source.description) is a \(source.kindName).", usage: spec.usageLine)
        }
        var reset: GroupReset?
        if arguments.flag("reset") {
            reset = GroupReset(shiftBy: try shift(arguments), dryRun: arguments.flag("dry-run"))
        } else if arguments.flag("dry-run") || arguments.value("shift-by") != nil {
            throw EvtError.usage("--\(arguments.flag("dry-run") ? "dry-run" : "shift-by") moves an existing group, so it goes with --reset (evt group-create \(arguments.operands[0]) \(group) --reset …).", usage: spec.usageLine)
        }
        if reset?.shiftBy != nil && arguments.value("from") != nil {
            throw EvtError.usage("--shift-by moves the group from where it is, --from to a position: give one of them.", usage: spec.usageLine)
        }
        let plan = try Backends.createGroup(group, for: source, from: from, reset: reset, kafka: kafka)
        if reset?.dryRun == true {
            let output = OutputWriter()
            for position in plan { GroupOutput.appendJSON(position, to: &output.buffer) }
            try output.flush()
        }
        return .success
    }

    /// --shift-by N: a whole number of events, negative going back.
    private static func shift(_ arguments: ParsedArguments) throws -> Int64? {
        try arguments.value("shift-by").map { text in
            guard let number = Int64(text) else {
                throw EvtError.usage("--shift-by \(text): expected a whole number of events (negative goes back, e.g. --shift-by -10).", usage: arguments.spec.usageLine)
            }
            return number
        }
    }
}
