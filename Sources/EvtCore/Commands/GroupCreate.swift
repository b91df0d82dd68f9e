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
        KafkaConfig.verbose = arguments.flag("verbose")
        switch source {
        case .redis(let server, let kind, let name):
            guard kind == .stream else {
                throw EvtError.usage("groups exist for Redis streams and Kafka topics; \(source.description) is a \(kind.rawValue).", usage: spec.usageLine)
            }
            let start = try streamStart(from)
            let connection = try RedisConnection(server)
            let created = try connection.call(["XGROUP", "CREATE", name, group, start, "MKSTREAM"])
            switch created {
            case .error(let message) where message.hasPrefix("BUSYGROUP"):
                guard reset else {
                    Diagnostics.print("group \(group) already exists on stream \(name); left as it is (--reset moves it to --from).")
                    return .success
                }
                if case .error(let message) = try connection.call(["XGROUP", "SETID", name, group, start]) {
                    throw EvtError.failure("cannot move group \(group) on stream \(name): \(message)")
                }
                Diagnostics.print("group \(group) on stream \(name) now delivers entries after \(start)")
            case .error(let message):
                throw EvtError.failure("cannot create group \(group) on stream \(name): \(message)")
            default:
                Diagnostics.print("created group \(group) on stream \(name), delivering entries after \(start)")
            }
            return .success
        case .kafka(let brokers, let topic, let partition):
            let properties = try PublishCommand.kafkaProperties(arguments)
            return try KafkaGroups.create(group: group, brokers: brokers, topic: topic, partition: partition,
                                          from: from, reset: reset, properties: properties)
        }
    }

    /// The XGROUP id for a position: the group delivers entries *after* it, so a position
    /// that names an entry becomes the id just before it.
    static func streamStart(_ position: Position) throws -> String {
        switch position {
        case .beginning: return "0"
        case .end: return "$"
        case .streamID(let id): return RedisConsumer.idBefore(id)
        case .time(let milliseconds), .offset(let milliseconds): return RedisConsumer.idBefore("\(milliseconds)-0")
        case .fromEnd:
            throw EvtError.usage("-N counts back per Kafka partition; for a stream give beginning, end, an id or @TIME.")
        }
    }
}
