/// `evt publish TARGET [FILE...]`: NDJSON lines in, events out, exit 0 only when every event
/// was acknowledged. Lines are numbered across the inputs in order, as if concatenated.
public enum PublishCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard let targetText = arguments.operands.first else {
            throw EvtError.usage("publish needs a TARGET, e.g. topic:orders or stream:orders.", usage: spec.usageLine)
        }
        let target = try Endpoint.parse(targetText, environment: environment)
        var options = SinkOptions()
        options.timeoutMs = try arguments.timeoutMs()
        options.requireSubscribers = arguments.flag("require-subscribers")
        options.headers = try arguments.values("header").map { word in
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                throw EvtError.usage("-H \(word): expected NAME=VALUE.", usage: spec.usageLine)
            }
            return (String(word[..<equals]), String(word[word.index(after: equals)...]))
        }
        if let maxlen = arguments.value("maxlen") {
            guard let number = Int(maxlen), number >= 0 else {
                throw EvtError.usage("--maxlen \(maxlen): expected a number of entries.", usage: spec.usageLine)
            }
            options.trimOnAdd = .maxLength(number)
        }
        if let maxAge = arguments.value("max-age") {
            guard options.trimOnAdd == nil else {
                throw EvtError.usage("--maxlen and --max-age: XADD trims by one of them at a time; give one, and trim by the other with evt trim STREAM.", usage: spec.usageLine)
            }
            options.trimOnAdd = .maxAgeMs(try DurationParser.milliseconds(maxAge, option: "--max-age"))
        }
        options.waitReplicas = try arguments.waitReplicas()
        let mode: InputDecoder.Mode = arguments.flag("raw") ? .raw : arguments.flag("envelope") ? .envelope : .json
        if arguments.flag("raw") && arguments.flag("envelope") {
            throw EvtError.usage("--raw and --envelope contradict each other: an envelope must be JSON.", usage: spec.usageLine)
        }
        if arguments.flag("raw") && arguments.value("key") != nil {
            throw EvtError.usage("--key reads the key from the JSON value, which --raw does not check; drop one of them.", usage: spec.usageLine)
        }
        let skipBadLines: Bool
        switch arguments.value("on-error") ?? "fail" {
        case "fail": skipBadLines = false
        case "skip": skipBadLines = true
        case let other: throw EvtError.usage("--on-error \(other): expected fail or skip.", usage: spec.usageLine)
        }

        try target.require([("--key", arguments.value("key") != nil, .keysAndHeaders),
                            ("-H/--header", !options.headers.isEmpty, .keysAndHeaders),
                            ("--partition", arguments.value("partition") != nil, .keysAndHeaders),
                            ("--maxlen", arguments.value("maxlen") != nil, .trimming),
                            ("--max-age", arguments.value("max-age") != nil, .trimming),
                            ("--require-subscribers", options.requireSubscribers, .pubSub),
                            ("--wait-replicas", options.waitReplicas != nil, .replicatedWrites)], usage: spec.usageLine)
        let partition = try arguments.value("partition").map { text in
            guard let number = Int32(text), number >= 0 else {
                throw EvtError.usage("--partition \(text): expected a partition number (0 or more).", usage: spec.usageLine)
            }
            return number
        }
        // `stream:*`, `list:*`: each envelope record names its key.
        let keyFromRecord: String?
        if case .redis(_, let kind, "*") = target, kind != .channel {
            guard mode == .envelope else {
                throw EvtError.usage("\(kind.rawValue):* takes each record's \(kind.rawValue) from its envelope: add --envelope, with records such as {\"\(kind.rawValue)\":\"orders\",\"value\":{…}}.", usage: spec.usageLine)
            }
            keyFromRecord = kind.rawValue
        } else {
            keyFromRecord = nil
        }
        let pinnedTarget = try target.pinned(to: partition)
        // Also for a Redis target: a Kafka --dead-letter destination uses them.
        options.kafka = try arguments.kafkaSettings()

        let dryRun = arguments.flag("dry-run")
        if dryRun && arguments.value("dead-letter") != nil {
            throw EvtError.usage("--dry-run sends nothing, --dead-letter would: drop one of them (--on-error skip lists every bad line).", usage: spec.usageLine)
        }
        let inputs = try InputFiles(paths: Array(arguments.operands.dropFirst()))
        let deadLetters = try arguments.value("dead-letter").map {
            try DeadLetters(destination: $0, environment: environment, options: options)
        }

        let sink: EventSink = dryRun ? CheckOnly() : try Backends.sink(for: pinnedTarget, options: options)
        let decoder = InputDecoder(mode: mode, keyPath: arguments.value("key"), nameMember: keyFromRecord)
        let encoding = try arguments.schemaEncoding(target: target.subjectName, environment: environment, dryRun: dryRun)

        let handled = dryRun ? "checked" : "delivered"   // what becomes of the lines before a bad one
        let progress = ProgressLine(verb: dryRun ? "checked" : "sent")
        defer { progress.clear() }
        if progress.isOn { progress.share = { inputs.shareRead } }
        // This thread sends; the one started below reads and checks the lines, one block
        // ahead, so that the JSON check does not add to the sending thread's time. With a
        // schema, a third thread encodes the checked blocks: the encoding costs twice the
        // check (callgrind, bench/schemas' Orders), and on one thread with it, it bounded
        // publish at half the rate of a plain one.
        let decoded = EventBlockExchange()
        let exchange = encoding == nil ? decoded : EventBlockExchange()   // what this thread sends
        var decodingEnd: DecodingEnd = .endOfInput
        let decodingThread = try BackgroundThread("to read the input") {
            decodingEnd = decodeAhead(inputs: inputs, decoder: decoder, keyFromRecord: keyFromRecord, keepsInput: encoding != nil,
                                      skipBadLines: skipBadLines, handled: handled, into: decoded)
        }
        var encodingEnd: DecodingEnd = .endOfInput
        var encodingThread: BackgroundThread?
        do {
            encodingThread = try encoding.map { encoding in
                try BackgroundThread("to encode the input") {
                    encodingEnd = encodeAhead(from: decoded, into: exchange, encoding: encoding, inputs: inputs,
                                              skipBadLines: skipBadLines)
                }
            }
        } catch {
            decoded.cancel()
            decodingThread.join()
            throw error
        }
        var sent = 0
        var badLines = 0
        var runFailure: EvtError?
        var linesRead = 0
        var sendingLine = 0
        let headers = EventHeaders()
        while let block = exchange.nextBlock() {
            defer { exchange.recycle(block) }
            do {
                try block.forEach(headers: headers) { event, _, _ in
                    sendingLine = event.line
                    sent += 1
                    progress.advance()
                    do {
                        try sink.send(event)
                    } catch let stopped as SinkStopped {
                        sent -= 1
                        throw stopped
                    }
                    linesRead = event.line
                    if Signals.stopRequested { throw StopSending() }
                } badLine: { bad, input in
                    badLines += 1
                    linesRead = bad.line
                    let column = bad.column.map { " at column \($0)" } ?? ""
                    Diagnostics.print("line \(bad.line)\(bad.place): \(bad.reason)\(column)")
                    deadLetters?.append(line: bad.line, error: bad.reason, input: input)
                    if !skipBadLines {
                        // The decoding thread stopped at it: nothing after it comes.
                        Diagnostics.print("stopped at line \(bad.line); every line before it is \(handled). Fix it, or use --on-error skip to go on past bad lines.")
                    }
                    if Signals.stopRequested { throw StopSending() }
                }
                linesRead = block.lastLine
                if block.inputStalled { try sink.inputStalled() }
            } catch is StopSending {
                break
            } catch let stopped as SinkStopped {
                runFailure = EvtError(stopped.cause, "\(clause(stopped.reason)); stopped reading input at line \(sendingLine): it and every line after it were not sent.")
                break
            } catch {
                runFailure = error as? EvtError ?? EvtError(.refused(code: ""), "\(error)")   // the sink gave up while the input paused
                break
            }
        }
        exchange.cancel()
        decoded.cancel()
        encodingThread?.join()
        decodingThread.join()
        for end in [decodingEnd, encodingEnd] {
            switch end {
            case .endOfInput: break
            case .lineTooLong(let message):
                badLines += 1
                Diagnostics.print(message)
            case .failed(let failure):
                if runFailure == nil { runFailure = failure }
            }
        }
        sink.finish()
        if let runFailure {
            Diagnostics.print(runFailure.message)
        } else if Signals.stopRequested {
            Diagnostics.print("stopped by a signal after line \(linesRead): any input after it was not read.")
        }
        for message in sink.tally.summary(sent: sent) { Diagnostics.print(message) }
        if dryRun {
            let bad = badLines == 0 ? "all good" : "\(badLines) bad"
            let lines = linesRead == 1 ? "1 line" : "\(linesRead) lines"
            let events = sent == 1 ? "1 event" : "\(sent) events"
            Diagnostics.print("--dry-run: \(lines) read, \(events) checked, \(bad); nothing was sent.")
        }
        var deadLettersKept = true
        if let deadLetters, badLines > 0 {
            deadLettersKept = deadLetters.finish(badLines: badLines)
        }
        // A stop signal that left events undelivered ends with 130/143 (they are named above),
        // unless something had failed for another reason.
        let failed = (runFailure.map { $0.cause != .stopped } ?? false)
            || !(sink.tally.allDelivered(sent: sent) || sink.tally.onlyStoppedTrouble)
            || !deadLettersKept
        if failed { return .failure }
        if badLines > 0 { return .badInput }
        return Signals.exitStatusAfterSignal ?? .success
    }
}

/// How the decoding thread stopped: at the end of the input (or at a bad line, a stop signal
/// or the sender's cancel, which the sender already knows of), or for a reason to report.
private enum DecodingEnd {
    case endOfInput
    case lineTooLong(String)
    case failed(EvtError)
}

/// Thrown by the sending loop to stop at a stop signal.
private struct StopSending: Error {}

/// Thrown from the line reader's input-pause hook once the sender has cancelled.
private struct DecodingCancelled: Error {}

/// The decoding thread: reads the inputs in order, numbering lines across them, and hands
/// blocks of decoded events and bad lines on through `exchange`, to the sender or to the
/// encoding thread (`keepsInput`: with each event's whole line, should that find it bad).
/// It stops after a bad line unless `skipBadLines`, at a stop signal, and when the one it
/// hands to cancels.
private func decodeAhead(inputs: InputFiles, decoder: InputDecoder, keyFromRecord: String?, keepsInput: Bool,
                         skipBadLines: Bool, handled: String, into exchange: EventBlockExchange) -> DecodingEnd {
    defer { exchange.finishDecoding() }
    guard var block = exchange.emptyBlock() else { return .endOfInput }
    var end = DecodingEnd.endOfInput
    /// Hands the block over and takes an empty one; false once the sender cancelled.
    func handOver(inputStalled: Bool) -> Bool {
        block.inputStalled = inputStalled
        exchange.hand(block)
        guard let next = exchange.emptyBlock() else { return false }
        block = next
        return true
    }
    var linesBefore = 0
    var cancelled = false
    reading: for (fileIndex, input) in inputs.files.enumerated() {
        let reader = LineReader(fd: input.fd)
        // While the input pauses, what was decoded goes out, and the sink is served (every
        // 200 ms) even when there is nothing new.
        reader.whenInputStalls = {
            guard handOver(inputStalled: true) else { throw DecodingCancelled() }
        }
        var fileLine = 0
        while true {
            let next: (bytes: UnsafeRawBufferPointer, number: Int)?
            do {
                next = try reader.next()
            } catch let tooLong as LineTooLong {
                end = .lineTooLong("line \(linesBefore + tooLong.line)\(InputFiles.place(input.path, tooLong.line)): longer than \(tooLong.limit >> 20) MiB; stopped reading there. Every line before it is \(handled).")
                break reading
            } catch is DecodingCancelled {
                cancelled = true
                break reading
            } catch {
                // Whatever was read before still gets delivered.
                end = .failed(EvtError(.refused(code: ""), "cannot read \(input.path ?? "stdin"): \(error)"))
                break reading
            }
            guard let (bytes, number) = next else { break }
            fileLine = number
            let lineNumber = linesBefore + number
            block.lastLine = lineNumber
            var line = bytes
            if line.last == UInt8(ascii: "\r") { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
            if line.isEmpty { continue }
            do {
                try decoder.decode(line, number: lineNumber) { event in
                    if let keyFromRecord, event.redisName?.isEmpty ?? true {
                        throw BadLine(reason: "the record names no \(keyFromRecord) (a non-empty \"\(keyFromRecord)\" member), which \(keyFromRecord):* needs", column: nil)
                    }
                    block.append(event, from: EventBlock.InputLine(file: fileIndex, line: number), input: keepsInput ? line : nil)
                }
            } catch let bad as BadLine {
                block.appendBadLine(line: lineNumber, place: InputFiles.place(input.path, number), reason: bad.reason,
                                    column: bad.column, input: line)
                if !skipBadLines { break reading }
            } catch {
                end = .failed(error as? EvtError ?? EvtError(.refused(code: ""), "\(error)"))
                break reading
            }
            if block.isFull && !handOver(inputStalled: false) {
                cancelled = true
                break reading
            }
            if Signals.stopRequested { break reading }
        }
        linesBefore += fileLine
        if Signals.stopRequested { break reading }
    }
    if !cancelled { exchange.hand(block) }
    return end
}

/// The encoding thread, with a schema: takes the decoding thread's blocks in order, encodes
/// each event, and hands the sender a block for each one taken (a value that does not fit
/// the schema becomes a bad line in its place). It stops after a bad line unless
/// `skipBadLines`, and when the sender cancels; either way it cancels the decoding thread.
private func encodeAhead(from decoded: EventBlockExchange, into exchange: EventBlockExchange, encoding: SchemaEncoding,
                         inputs: InputFiles, skipBadLines: Bool) -> DecodingEnd {
    defer {
        decoded.cancel()
        exchange.finishDecoding()
    }
    let headers = EventHeaders()
    while let block = decoded.nextBlock() {
        defer { decoded.recycle(block) }
        guard let encoded = exchange.emptyBlock() else { return .endOfInput }
        encoded.lastLine = block.lastLine
        encoded.inputStalled = block.inputStalled
        var stopped = false
        var end = DecodingEnd.endOfInput
        do {
            try block.forEach(headers: headers) { event, source, input in
                do {
                    try encoding.encode(event) { encoded.append($0, from: source) }
                } catch let bad as BadLine {
                    let place = InputFiles.place(inputs.files[source.file].path, source.line)
                    encoded.appendBadLine(line: event.line, place: place, reason: bad.reason, column: bad.column,
                                          input: input ?? UnsafeRawBufferPointer(start: nil, count: 0))
                    if !skipBadLines { throw StopEncoding() }
                }
            } badLine: { bad, input in
                encoded.appendBadLine(line: bad.line, place: bad.place, reason: bad.reason, column: bad.column, input: input)
            }
        } catch is StopEncoding {
            stopped = true
        } catch {
            end = .failed(error as? EvtError ?? EvtError(.refused(code: ""), "\(error)"))
            stopped = true
        }
        exchange.hand(encoded)
        if stopped { return end }
    }
    return .endOfInput
}

/// Thrown by the encoding thread to stop at a bad line.
private struct StopEncoding: Error {}

/// `--dry-run`'s target: each event is counted as it comes, and goes nowhere.
private final class CheckOnly: EventSink {
    let tally = DeliveryTally()
    func send(_ event: borrowing OutgoingEvent) throws { tally.delivered() }
    func inputStalled() throws {}
    func finish() {}
}

/// `--dead-letter DEST`: one `{"line":N,"error":"…","input":"…"}` per bad line (`input_b64`
/// when the line is not UTF-8). DEST is an evt endpoint, where each becomes an event with the
/// same delivery rules as the input, or else a file path, appended to.
final class DeadLetters {
    let destination: String
    private let sink: EventSink
    private var sent = 0
    private var record: [UInt8] = []

    init(destination: String, environment: [String: String], options: SinkOptions) throws {
        self.destination = Endpoint.redactingPassword(destination)
        var deadLetterOptions = SinkOptions()
        deadLetterOptions.timeoutMs = options.timeoutMs
        deadLetterOptions.kafka = options.kafka
        sink = try Backends.sink(forDestination: destination, environment: environment, options: deadLetterOptions)
    }

    func append(line: Int, error: String, input: UnsafeRawBufferPointer) {
        record.removeAll(keepingCapacity: true)
        record += Array("{\"line\":\(line),\"error\":".utf8)
        var error = error
        error.withUTF8 { JSONOutput.appendQuoted(UnsafeRawBufferPointer($0), to: &record) }
        if JSON.isValidUTF8(input) {
            record += Array(",\"input\":".utf8)
            JSONOutput.appendQuoted(input, to: &record)
        } else {
            record += Array(",\"input_b64\":\"".utf8)
            Base64.append(input, to: &record)
            record.append(UInt8(ascii: "\""))
        }
        record.append(UInt8(ascii: "}"))
        sent += 1
        record.withUnsafeBytes { bytes in
            do {
                try sink.send(OutgoingEvent(line: line, value: bytes, valueKind: .object))
            } catch {
                sink.tally.failed(line: line, reason: "\(error)", cause: (error as? EvtError)?.cause ?? (error as? SinkStopped)?.cause ?? .refused(code: ""))
            }
        }
    }

    /// Waits for the dead-letter target's acknowledgements and reports; false when some bad
    /// line was not kept.
    func finish(badLines: Int) -> Bool {
        sink.finish()
        let plural = badLines == 1 ? "" : "s"
        if sink.tally.allDelivered(sent: sent) {
            Diagnostics.print("\(badLines) bad line\(plural) kept in \(destination)")
            return true
        }
        Diagnostics.print("the dead-letter destination \(destination) did not take every bad line (numbered by input line):")
        for message in sink.tally.summary(sent: sent) { Diagnostics.print(message) }
        return false
    }
}
