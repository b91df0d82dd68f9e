/// `evt consumers STREAM GROUP [--prune-idle DURATION --to CONSUMER] [--dry-run]`: a stream
/// group's consumers; with --prune-idle, those idle longer than DURATION are deleted once
/// their pending entries belong to CONSUMER.
public enum ConsumersCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.count == 2 else {
            throw EvtError.usage("consumers needs a STREAM and a GROUP, e.g. evt consumers stream:orders billing.", usage: spec.usageLine)
        }
        let source = try Endpoint.parse(arguments.operands[0], environment: environment)
        let group = arguments.operands[1]
        try source.require([("evt consumers", true, .pendingEntries)], usage: spec.usageLine)
        let idleMs = try arguments.value("prune-idle").map { try DurationParser.milliseconds($0, option: "--prune-idle") }
        let heir = arguments.value("to")
        guard (idleMs == nil) == (heir == nil) else {
            throw EvtError.usage(idleMs == nil
                ? "--to names who takes the pending entries of the consumers --prune-idle DURATION deletes: give both."
                : "--prune-idle needs --to CONSUMER, who takes the pending entries of each consumer it deletes (none is dropped).",
                usage: spec.usageLine)
        }
        let dryRun = arguments.flag("dry-run")
        let consumers = try Backends.consumers(of: group, on: source)
        let listed = try consumers.list()
        let output = OutputWriter()
        guard let idleMs, let heir else {
            for consumer in listed {
                GroupOutput.appendJSON(consumer, stream: consumers.stream, group: group, into: &output.buffer)
            }
            try output.flush()
            return .success
        }
        let idle = listed.filter { $0.idleMs > Int64(idleMs) && $0.name != heir }
        if dryRun {
            for consumer in idle {
                GroupOutput.appendJSON(consumer, stream: consumers.stream, group: group, to: heir, into: &output.buffer)
            }
            try output.flush()
            return .success
        }
        for consumer in idle {
            // A consumer that got a delivery between the hand-over and the delete is read
            // again: it is not deleted with anything pending.
            let handed = try consumers.handOver(from: consumer.name, to: heir)
            switch try consumers.deleteIfNothingPending(consumer.name) {
            case .deleted(let dropped) where dropped > 0:
                throw EvtError(.refused(code: "DROPPED"), "XGROUP DELCONSUMER dropped \(dropped) pending entr\(dropped == 1 ? "y" : "ies") of consumer \(consumer.name) of group \(group) on stream \(consumers.stream); stopped.")
            case .deleted:
                Diagnostics.print("removed consumer \(consumer.name) of group \(group) on stream \(consumers.stream) (idle \(consumer.idleMs) ms); its \(handed) pending entr\(handed == 1 ? "y" : "ies") now belong to \(heir)")
            case .kept:
                Diagnostics.print("kept consumer \(consumer.name) of group \(group) on stream \(consumers.stream): it received entries while evt handed \(handed) to \(heir), so it is not idle after all")
            }
        }
        if idle.isEmpty {
            Diagnostics.print("no consumer of group \(group) on stream \(consumers.stream) is idle longer than \(idleMs) ms; nothing removed")
        }
        return .success
    }
}
