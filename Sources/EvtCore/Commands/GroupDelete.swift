/// `evt group-delete SOURCE GROUP [--force]`: XGROUP DESTROY on a stream (refused while
/// entries are pending, unless --force), DeleteGroups on Kafka.
public enum GroupDeleteCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("group-delete needs a SOURCE and a GROUP, e.g. evt group-delete stream:orders billing.", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let group = arguments.operands[1]
        let force = arguments.flag("force")
        let kafka = try arguments.kafkaSettings()
        try source.require([("evt group-delete", true, .groups), ("--force", force, .pendingEntries)], usage: spec.usageLine)
        let dropped = try Backends.deleteGroup(group, for: source, force: force, kafka: kafka)
        var note = "deleted group \(group) of \(source.description)"
        if dropped > 0 { note += ", with its \(dropped) pending entr\(dropped == 1 ? "y" : "ies") (--force)" }
        Diagnostics.print(note)
        return .success
    }
}
