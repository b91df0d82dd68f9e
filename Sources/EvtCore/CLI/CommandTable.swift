/// Every command evt has, in the order `evt help` lists them.
public enum CommandTable {
    static let kafkaProperty = OptionSpec(
        "property", short: "X", .repeated("KEY=VALUE"),
        "Set a librdkafka client property, as kcat -X (repeatable). Ignored for Redis.")
    static let kafkaPropertyFile = OptionSpec(
        "property-file", short: "F", .value("FILE"),
        "Read librdkafka properties (KEY=VALUE lines, # comments) from FILE.", completion: .file)
    static let verbose = OptionSpec(
        "verbose", short: "v", "Also show the Kafka client's own log lines on stderr.")

    public static let publish = CommandSpec(
        name: "publish",
        summary: "Send NDJSON lines (stdin or FILEs) to a topic, stream, list or channel.",
        operands: [OperandSpec("TARGET", completion: .endpoint),
                   OperandSpec("FILE", optional: true, repeating: true, completion: .file)],
        options: [
            OptionSpec("key", .value("PATH"),
                       "Kafka: take the record key from this dotted path of the JSON value (user.id)."),
            OptionSpec("header", short: "H", .repeated("NAME=VALUE"), "Kafka: add a header to every record (repeatable)."),
            OptionSpec("partition", .value("N"), "Kafka: send every record to partition N."),
            OptionSpec("maxlen", .value("N"), "Stream: trim the stream to about N entries (XADD MAXLEN ~ N)."),
            OptionSpec("max-age", .value("DURATION"),
                       "Stream: trim entries older than DURATION as it adds (XADD MINID ~ NOW-DURATION)."),
            OptionSpec("envelope", "Read records in evt's output shape (key, headers, partition, timestamp, value)."),
            OptionSpec("raw", "Send each line's bytes as they are, without checking that they are JSON."),
            OptionSpec("on-error", .value("fail|skip"),
                       "On a bad line: stop reading (fail, the default) or report it and go on (skip).",
                       completion: .choices(["fail", "skip"])),
            OptionSpec("dead-letter", .value("DEST"),
                       "Keep each bad line as {\"line\":N,\"error\":…,\"input\":…}: DEST is an endpoint (list:bad) or a file, appended to.",
                       completion: .file),
            OptionSpec("require-subscribers",
                       "Channel: count a message that reached no subscriber as not delivered."),
            OptionSpec("dry-run", "Check the input as publish would and report bad lines; connect to nothing, send nothing."),
            valueSchema, keySchema, register, schemaRegistry,
            waitReplicas,
            OptionSpec("timeout", .value("DURATION"),
                       "How long to wait for acknowledgements (default 30s; Kafka's message.timeout.ms)."),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Exit status: 0 when every event was acknowledged (with --dry-run: every line was good); \
        1 when some were not (stderr names the input lines); 3 on a bad input line (every \
        earlier line is still delivered).
        """)

    public static let tail = CommandSpec(
        name: "tail",
        summary: "Print the last events of a topic, stream, list or channel as NDJSON.",
        operands: [OperandSpec("SOURCE", completion: .endpoint)],
        options: [
            OptionSpec("lines", short: "n", .value("N"),
                       "Show the last N events (default 10; per partition for a topic, as kcat -o -N)."),
            OptionSpec("follow", short: "f", "Keep printing new events as they arrive (required for a channel)."),
            match, recordKey,
            schemaRegistry, decode,
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: "Events are printed oldest first, one JSON object per line.")

    static let schemaRegistry = OptionSpec(
        "schema-registry", .value("URL"),
        "The Confluent Schema Registry (default EVT_SCHEMA_REGISTRY_URL) for Avro and JSON Schema keys and values.")
    static let decode = OptionSpec(
        "decode", .value("auto|none"),
        "With a registry: decode framed keys and values (auto, the default) or print them as they are (none).",
        completion: .choices(["auto", "none"]))
    static let valueSchema = OptionSpec(
        "value-schema", .value("SPEC"),
        "Encode each value with a schema: an id, topic, SUBJECT[:VERSION], or a file (.avsc, .json).", completion: .file)
    static let keySchema = OptionSpec(
        "key-schema", .value("SPEC"), "Encode each key with a schema, as --value-schema does values.", completion: .file)
    static let register = OptionSpec(
        "register", "Register the --value-schema (--key-schema) FILE under the topic's subject if it is not there.")

    static let recordKey = OptionSpec(
        "key", .value("KEY"),
        "Topic: read only the partition KEY hashes to (murmur2, or -X partitioner=) and only records with key KEY.")

    public static let count = CommandSpec(
        name: "count",
        summary: "Count the records of a topic, partition, stream or list, or of a range of them.",
        operands: [OperandSpec("SOURCE", completion: .endpoint), OperandSpec("POSITION", optional: true)],
        options: [
            OptionSpec("until", .value("POSITION"),
                       "Count up to this position (inclusive): an offset or id, -N, @TIME or end (default: the end at the start)."),
            OptionSpec("match", .repeated("FIELD=PATTERN"),
                       "Count only records where key=GLOB, header.NAME=GLOB or value.PATH=VALUE holds (repeatable: all must)."),
            OptionSpec("key", .value("KEY"),
                       "Topic: read only the partition KEY hashes to (murmur2, or -X partitioner=) and count records with key KEY."),
            OptionSpec("exact", "Topic: when the watermarks cannot be trusted (compaction), count by reading the records."),
            schemaRegistry, decode,
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Prints one line: {"topic":…,"count":N,"partitions":{…},"exact":…}, {"stream":…} or {"list":…}. \
        POSITION: an offset or stream id, beginning, end, -N (N before the end, per partition) \
        or @TIME. Without POSITION, --until, --match and --key, a topic is counted from its \
        watermarks, a stream by XLEN, a list by LLEN.
        """)

    static let match = OptionSpec(
        "match", .repeated("FIELD=PATTERN"),
        "Print only records where key=GLOB, header.NAME=GLOB or value.PATH=VALUE holds (repeatable: all must).")

    static let from = OptionSpec(
        "from", .value("POSITION"),
        "Where a new reader or group starts: beginning, end (default), an offset or id, -N, @TIME.")

    static let waitReplicas = OptionSpec(
        "wait-replicas", .value("N"), "Redis: count an event as delivered only once N replicas have it (WAIT after each batch).")

    public static let subscribe = CommandSpec(
        name: "subscribe",
        summary: "Consume events as NDJSON, acknowledging each only after it was handed over.",
        operands: [OperandSpec("SOURCE", repeating: true, completion: .endpoint)],
        options: [
            OptionSpec("group", short: "g", .value("GROUP"),
                       "Read as a member of a consumer group (stream: XREADGROUP + XACK; topic: committed offsets)."),
            OptionSpec("consumer", .value("NAME"), "The group member's name (default evt-HOSTNAME)."),
            from,
            OptionSpec("create", "Create the --group if it does not exist (at --from)."),
            OptionSpec("count", short: "c", .value("N"), "Stop after N events; exactly N are acknowledged."),
            exec, onExecError,
            OptionSpec("idle-exit", .value("DURATION"), "Exit 0 when nothing arrived for DURATION."),
            OptionSpec("processing", .value("LIST"),
                       "List: move each item into LIST (LMOVE) and remove it once handed over: at least once."),
            OptionSpec("pattern", "Channel: subscribe by pattern (PSUBSCRIBE) whatever the name."),
            OptionSpec("no-pattern", "Channel: subscribe to the name as written, even with * ? or [."),
            match,
            schemaRegistry, decode,
            OptionSpec("no-ack-filtered",
                       "Stream group or list: leave the records --match filtered out pending, not acknowledged."),
            OptionSpec("ack-batch", .value("N"),
                       "Without --exec: write and acknowledge at most N events at a time (default 1000)."),
            OptionSpec("retry-for", .value("DURATION"),
                       "Redis: keep reconnecting a lost connection this long before exit 1 (default 60s)."),
            OptionSpec("stats", .value("DURATION"),
                       "Print events consumed, rate, the group's lag (as evt lag) and p50/p99 latencies on stderr every DURATION."),
            OptionSpec("metrics", .value("HOST:PORT"),
                       "Serve this worker's counters and latency histograms at http://HOST:PORT/metrics (Prometheus)."),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Records are written to stdout and flushed before they are acknowledged; with | head, \
        what the pipe held but head never printed was acknowledged: use -c N for an exact count.
        """,
        without: ["follow": "evt subscribe always follows: it runs until -c N, --idle-exit or a signal stops it."])

    static let exec = OptionSpec(
        "exec", .value("COMMAND"),
        "Run COMMAND with sh -c per event, the record on its stdin; acknowledge when it exits 0.")
    static let onExecError = OptionSpec(
        "on-exec-error", .value("fail|continue"),
        "When --exec fails: stop and exit 1 (fail, the default) or go on (continue); the event stays pending.",
        completion: .choices(["fail", "continue"]))

    public static let claimPending = CommandSpec(
        name: "claim-pending",
        summary: "Take over a stream group's entries left unacknowledged too long, and hand them over.",
        operands: [OperandSpec("SOURCE", completion: .endpoint), OperandSpec("GROUP")],
        options: [
            OptionSpec("min-idle", .value("DURATION"), "Claim entries unacknowledged for at least DURATION (required)."),
            OptionSpec("consumer", .value("NAME"), "Claim as NAME (default evt-HOSTNAME-PID)."),
            OptionSpec("count", short: "c", .value("N"), "Claim at most N entries."),
            exec, onExecError,
            OptionSpec("no-ack", "Only take ownership: print the entries, acknowledge nothing."),
            OptionSpec("max-deliveries", .value("N"),
                       "Entries delivered N times or more go to --dead-letter instead of stdout."),
            OptionSpec("dead-letter", .value("DEST"),
                       "Where those entries go: an endpoint (stream:orders-dlq) or a file; XACKed once DEST took them.",
                       completion: .endpoint),
            OptionSpec("dry-run", "Show what would be claimed (id, consumer, idle_ms, deliveries); change nothing."),
            OptionSpec("ack-batch", .value("N"), "Claim and acknowledge N entries at a time (default 100)."),
            schemaRegistry, decode,
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: "Each entry is printed with \"deliveries\":N and XACKed after stdout was flushed or --exec exited 0.")

    public static let groupCreate = CommandSpec(
        name: "group-create",
        summary: "Create a consumer group on a stream or topic, starting at a position.",
        operands: [OperandSpec("SOURCE", completion: .endpoint), OperandSpec("GROUP")],
        options: [
            from,
            OptionSpec("reset", "Move an existing group to --from (XGROUP SETID; Kafka: commit new offsets)."),
            OptionSpec("shift-by", .value("N"),
                       "With --reset: move the group by N events from where it is (negative goes back), not to --from."),
            OptionSpec("dry-run", "With --reset: print each partition's or the group's current and new position; change nothing."),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        An existing group is left as it is (exit 0, with a note on stderr) unless --reset. \
        Kafka offsets are kept between the log start and end, as kafka-consumer-groups does. \
        A stream group is moved with its entries-read set, so XINFO GROUPS' lag stays exact.
        """)

    public static let groupDelete = CommandSpec(
        name: "group-delete",
        summary: "Delete a consumer group of a stream or topic.",
        operands: [OperandSpec("SOURCE", completion: .endpoint), OperandSpec("GROUP")],
        options: [
            OptionSpec("force", "Stream: delete the group even though entries are pending (they are dropped with it)."),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Stream: XGROUP DESTROY, refused (exit 1) while the group has pending entries unless \
        --force. Kafka: a DeleteGroups request; the broker deletes only a group without members.
        """)

    public static let consumers = CommandSpec(
        name: "consumers",
        summary: "List a stream group's consumers; remove idle ones without losing their pending entries.",
        operands: [OperandSpec("STREAM", completion: .endpoint), OperandSpec("GROUP")],
        options: [
            OptionSpec("prune-idle", .value("DURATION"),
                       "Remove each consumer idle longer than DURATION, once its pending entries belong to --to."),
            OptionSpec("to", .value("CONSUMER"),
                       "With --prune-idle: the consumer that takes their pending entries (XCLAIM JUSTID: delivery counts kept)."),
            OptionSpec("dry-run", "With --prune-idle: print the consumers it would remove; change nothing."),
        ],
        notes: """
        Prints one line per consumer: {"stream":…,"group":…,"consumer":…,"pending":N,"idle_ms":N}. \
        Each removal is printed on stderr.
        """)

    public static let replay = CommandSpec(
        name: "replay-from-offset",
        summary: "Replay a topic, partition or stream from a position, to stdout or into a target.",
        operands: [OperandSpec("SOURCE", completion: .endpoint), OperandSpec("POSITION")],
        options: [
            OptionSpec("until", .value("POSITION"),
                       "Stop after this position (inclusive): an offset or id, -N, @TIME or end (default: the end at the start)."),
            OptionSpec("follow", short: "f", "Do not stop at the end: go on with new events."),
            OptionSpec("to", .value("TARGET"),
                       "Write the events into TARGET (any endpoint) with publish's delivery rules, instead of stdout.",
                       completion: .endpoint),
            OptionSpec("count", short: "c", .value("N"), "Stop after N events."),
            OptionSpec("rate", .value("N/s"), "Replay at most N events per second."),
            match, recordKey,
            schemaRegistry, decode, valueSchema, keySchema, register,
            OptionSpec("timeout", .value("DURATION"),
                       "With --to: how long to wait for acknowledgements (default 30s)."),
            waitReplicas,
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        POSITION: an offset or stream id, beginning, end, -N (N before the end, per partition) \
        or @TIME (ms since the epoch, or ISO 8601; no zone means UTC).
        """)

    public static let copy = CommandSpec(
        name: "copy-between",
        summary: "Copy a topic, stream or list into a stream, topic, list or channel, resumably.",
        operands: [OperandSpec("SOURCE", completion: .endpoint), OperandSpec("TARGET", completion: .endpoint)],
        options: [
            OptionSpec("checkpoint", .value("NAME"),
                       "Keep the position in Redis (evt:checkpoint:NAME) and resume from it on the next run."),
            OptionSpec("follow", short: "f", "Do not stop at the end: go on copying new events (a bridge)."),
            OptionSpec("exactly-once",
                       "Into a stream: entries and checkpoint in one transaction; stream into a topic: resume after what already arrived."),
            OptionSpec("key-field", .value("FIELD"),
                       "Stream to topic: the Kafka key is this field (or FIELD.path inside a JSON field)."),
            OptionSpec("per-partition", "Topic to stream: one stream per partition, named TARGET:PARTITION."),
            OptionSpec("stats", .value("DURATION"), "Print events copied, rate, position, lag and p50/p99 end-to-end time on stderr every DURATION."),
            OptionSpec("metrics", .value("HOST:PORT"),
                       "With -f: serve the copy's counters, batches, checkpoint age and end-to-end histogram at http://HOST:PORT/metrics."),
            schemaRegistry, decode, valueSchema, keySchema, register,
            OptionSpec("timeout", .value("DURATION"),
                       "How long to wait for acknowledgements (default 30s)."),
            waitReplicas,
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Without --checkpoint the copy starts at the source's beginning and records nothing. \
        A checkpoint belongs to one source and one target, and one copy at a time uses it: \
        a second copy on it exits 1 before copying anything. \
        Without -f it stops at the source's end as of the start. See evt-copy-between(1) for \
        how records and entries map onto each other.
        """)

    public static let lag = CommandSpec(
        name: "lag",
        summary: "Show how far consumer groups are behind: topics, streams (pending, deliveries) and lists.",
        operands: [OperandSpec("SOURCE", repeating: true, completion: .endpoint)],
        options: [
            OptionSpec("group", short: "g", .repeated("GROUP"),
                       "Only this group (repeatable); default every group of a stream, or that the Kafka cluster lists."),
            OptionSpec("format", .value("json|table|prometheus"),
                       "Output: NDJSON (default when stdout is not a terminal), a table, or Prometheus text metrics.",
                       completion: .choices(["json", "table", "prometheus"])),
            OptionSpec("watch", .value("DURATION"),
                       "Repeat every DURATION until stopped (the table is redrawn), with each group's status and rates."),
            OptionSpec("window", .value("N"),
                       "Status and rates over the last N reads (default 5, at least 2)."),
            OptionSpec("fail-on", .value("STATUS,..."),
                       "Exit 4 when a group is stalled or falling_behind (comma list); without --watch, reads the window 5s apart.",
                       completion: .choices(["stalled", "falling_behind", "stalled,falling_behind"])),
            OptionSpec("listen", .value("HOST:PORT"),
                       "Serve Prometheus metrics at http://HOST:PORT/metrics until stopped, reading at most once per --watch (default 5s)."),
            OptionSpec("consumer-labels", .flag,
                       "Prometheus: also the series per consumer of a stream group (label consumer)."),
            OptionSpec("max-lag", .value("N"), "Exit 4 when a group has more than N events left to consume."),
            OptionSpec("max-lag-age", .value("DURATION"),
                       "Exit 4 when a group's oldest unconsumed event is older than DURATION."),
            OptionSpec("processing", .value("LIST"), "List: also show this processing list's length (subscribe --processing)."),
            OptionSpec("dead-letter", .repeated("DEST"), "Also show the depth of this dead-letter stream or list (repeatable).",
                       completion: .endpoint),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Kafka: lag is the log end minus the committed offset, per partition. Streams: the \
        entries after the group's last-delivered id, with pending entries, their delivery \
        counts and each consumer. Lists: their length. Exit 4: beyond --max-lag/--max-lag-age, \
        or a group in a --fail-on status. Status over the window: stalled (no progress while \
        lag > 0), falling_behind (lag grows at every read while consuming), else ok.
        """)

    public static let ls = CommandSpec(
        name: "ls",
        summary: "List what the servers hold: Kafka brokers and topics, Redis streams, lists and channels.",
        operands: [OperandSpec("WHAT", optional: true, repeating: true, completion: .choices(
            ["redis://", "rediss://", "kafka://", "topic:", "stream:", "list:", "channel:"]))],
        options: [
            OptionSpec("format", .value("json|table"),
                       "Output: NDJSON (default when stdout is not a terminal) or tables.",
                       completion: .choices(["json", "table"])),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        WHAT: redis://… or kafka://… (everything there), or topic:GLOB, stream:GLOB, list:GLOB, \
        channel:GLOB on the servers of EVT_KAFKA_BROKERS and EVT_REDIS_URL; none: both. Topics \
        starting with __ are listed only when a pattern starting with __ names them. Exit 1 \
        when a server could not be listed (named on stderr; the others are still listed).
        """)

    public static let trim = CommandSpec(
        name: "trim",
        summary: "Remove entries from a stream's head: acknowledged by every group, older than, beyond a length.",
        operands: [OperandSpec("STREAM", completion: .endpoint)],
        options: [
            OptionSpec("acked", "Remove what every group has consumed and acknowledged (nothing a group still needs)."),
            OptionSpec("older-than", .value("DURATION"), "Remove entries whose id time is older than DURATION (7d, 12h)."),
            OptionSpec("maxlen", .value("N"), "Keep the newest N entries."),
            OptionSpec("dry-run", "Print the plan ({\"stream\":…,\"remove\":N,\"up_to\":ID}) and change nothing."),
        ],
        notes: """
        With several conditions an entry is removed only if it meets them all. The cut is \
        computed and applied in one script on the server, so a group or a delivery that \
        appears meanwhile loses nothing. Prints on stderr how many entries went, up to which id.
        """)

    public static let sandbox = CommandSpec(
        name: "sandbox",
        summary: "Run throwaway local brokers: a redis-server and a mock Kafka cluster.",
        operands: [],
        options: [
            OptionSpec("run", .value("COMMAND"),
                       "Run COMMAND with sh -c, EVT_REDIS_URL and EVT_KAFKA_BROKERS set; exit with its status."),
            OptionSpec("brokers", .value("N"), "Number of mock Kafka brokers (default 1)."),
            OptionSpec("topic", .repeated("NAME:PARTITIONS"),
                       "Create a topic with that many partitions (repeatable; others get 4 on first use)."),
        ],
        notes: """
        Without --run, prints export lines for the shell and runs until SIGINT or SIGTERM. \
        To use them in an interactive shell: env=$(mktemp); evt sandbox > "$env" & \
        until [ -s "$env" ]; do sleep 0.1; done; . "$env"
        """)

    public static let help = CommandSpec(
        name: "help",
        summary: "Show help for evt or one command.",
        operands: [OperandSpec("COMMAND", optional: true, completion: .choices(all.map(\.name)))],
        options: [])

    private static let all: [CommandSpec] = [publish, subscribe, tail, groupCreate, groupDelete, consumers, claimPending, replay, copy, lag, ls, trim, count, sandbox]

    /// The commands in the order help lists them (help itself last).
    public static var commands: [CommandSpec] { all + [help] }

    public static func command(named name: String) -> CommandSpec? {
        commands.first { $0.name == name }
    }
}
