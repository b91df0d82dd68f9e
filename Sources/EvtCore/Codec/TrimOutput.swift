/// `evt trim --dry-run`'s plan, one NDJSON line (CONTRACT.md, "Inventory and upkeep"):
/// `{"stream":"orders","remove":120,"up_to":"1763812345123-0"}`, `up_to` null when nothing is.
enum TrimOutput {
    static func appendJSON(_ plan: StreamTrimPlan, to out: inout [UInt8]) {
        var object = JSONObjectBuilder()
        object.string("stream", plan.stream)
        object.number("remove", plan.removed)
        if let upTo = plan.upTo { object.string("up_to", upTo) } else { object.raw("up_to", "null") }
        out += object.closed
        out.append(UInt8(ascii: "\n"))
    }
}
