/// NDJSON of the upkeep commands on groups (CONTRACT.md, "Inventory and upkeep"):
/// `group-create --reset --dry-run` prints each position as
/// `{"topic":"orders","group":"g","partition":0,"current":25,"new":15}` or
/// `{"stream":"orders","group":"g","current":"ID","new":"ID"}`; `evt consumers` prints
/// `{"stream":"orders","group":"g","consumer":"c1","pending":3,"idle_ms":4200}`.
enum GroupOutput {
    static func appendJSON(_ position: GroupPosition, to out: inout [UInt8]) {
        var object = JSONObjectBuilder()
        switch position {
        case .partition(let topic, let group, let partition, let current, let new):
            object.string("topic", topic)
            object.string("group", group)
            object.number("partition", Int64(partition))
            object.number("current", current)
            object.number("new", new)
        case .stream(let stream, let group, let current, let new):
            object.string("stream", stream)
            object.string("group", group)
            if let current { object.string("current", current) } else { object.raw("current", "null") }
            object.string("new", new)
        }
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }

    /// A consumer of a stream group; `to` is where `--prune-idle --dry-run` would hand its entries.
    static func appendJSON(_ consumer: StreamConsumer, stream: String, group: String, to: String? = nil,
                           into out: inout [UInt8]) {
        var object = JSONObjectBuilder()
        object.string("stream", stream)
        object.string("group", group)
        object.string("consumer", consumer.name)
        object.number("pending", consumer.pending)
        object.number("idle_ms", consumer.idleMs)
        if let to { object.string("prune_to", to) }
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }
}
