/// `evt group-create SOURCE GROUP [--from POSITION] [--reset]`: a Redis stream group
/// (XGROUP CREATE … MKSTREAM, or SETID with --reset) or a Kafka group's committed offsets.
public enum GroupCreateCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("group-create needs a SOURCE and a GROUP, e.g. evt group-create stream:orders billing.", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let group = arguments.operands[1]
        let from = try arguments.value("from").map { try Position.parse($0, option: "--from") } ?? .end
        let reset = arguments.flag("reset")
        let kafka = try arguments.kafkaSettings()
        guard source.has(.groups) else {
            throw EvtError.usage("groups exist for Redis streams and Kafka topics; \(source.description) is a \(source.kindName).", usage: spec.usageLine)
        }
        return try Backends.createGroup(group, for: source, from: from, reset: reset, kafka: kafka)
    }
}
