/// `evt trim STREAM (--acked | --older-than DURATION | --maxlen N)... [--dry-run]`: removes
/// entries from a stream's head that meet every condition given, in one server-side step.
public enum TrimCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 1 else {
            throw EvtError.usage("trim needs one STREAM, e.g. evt trim stream:orders --acked.", usage: spec.usageLine)
        }
        let stream = try Endpoint.parse(arguments.operands[0], environment: environment)
        try stream.require([("evt trim", true, .trimming)], usage: spec.usageLine)
        var conditions = StreamTrimConditions()
        conditions.acked = arguments.flag("acked")
        conditions.olderThanMs = try arguments.value("older-than").map { try DurationParser.milliseconds($0, option: "--older-than") }
        conditions.keepNewest = try arguments.number("maxlen", minimum: 0, what: "entries to keep")
        guard !conditions.isEmpty else {
            throw EvtError.usage("trim needs at least one of --acked, --older-than DURATION and --maxlen N; with several, an entry is removed only if it meets them all.", usage: spec.usageLine)
        }
        let dryRun = arguments.flag("dry-run")
        let plan = try Backends.trim(stream, conditions: conditions, dryRun: dryRun)
        if dryRun {
            let output = OutputWriter()
            TrimOutput.appendJSON(plan, to: &output.buffer)
            try output.flush()
        } else if let upTo = plan.upTo {
            Diagnostics.print("removed \(plan.removed) entr\(plan.removed == 1 ? "y" : "ies") from stream \(plan.stream), up to \(upTo)")
        } else {
            Diagnostics.print("nothing to remove from stream \(plan.stream): no entry at its head meets every condition given")
        }
        return .success
    }
}
