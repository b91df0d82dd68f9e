/// `evt count`'s answer, one NDJSON line (CONTRACT.md, "Inventory and upkeep"):
/// `{"topic":"orders","count":26,"partitions":{"0":14,"1":12},"exact":true}`, or
/// `{"stream":"orders","count":100,"exact":true}`, `{"list":"jobs","count":12,"exact":true}`.
enum CountOutput {
    static func appendJSON(_ count: SourceCount, to out: inout [UInt8]) {
        var object = JSONObjectBuilder()
        object.string(count.kind, count.name)
        object.number("count", count.count)
        if let partitions = count.partitions {
            var each = JSONObjectBuilder()
            for (partition, n) in partitions.sorted(by: { $0.key < $1.key }) { each.number(String(partition), n) }
            object.object("partitions", each)
        }
        object.raw("exact", count.exact ? "true" : "false")
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }
}
