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
            OptionSpec("timeout", .value("DURATION"),
                       "How long to wait for acknowledgements (default 30s; Kafka's message.timeout.ms)."),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: """
        Exit status: 0 when every event was acknowledged; 1 when some were not (stderr names \
        the input lines); 3 on a bad input line (every earlier line is still delivered).
        """)

    public static let tail = CommandSpec(
        name: "tail",
        summary: "Print the last events of a topic, stream, list or channel as NDJSON.",
        operands: [OperandSpec("SOURCE", completion: .endpoint)],
        options: [
            OptionSpec("lines", short: "n", .value("N"),
                       "Show the last N events (default 10; per partition for a topic, as kcat -o -N)."),
            OptionSpec("follow", short: "f", "Keep printing new events as they arrive (required for a channel)."),
            kafkaProperty, kafkaPropertyFile, verbose,
        ],
        notes: "Events are printed oldest first, one JSON object per line.")

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
        Without --run, prints export lines for the shell and runs until SIGINT or SIGTERM: \
        eval "$(evt sandbox &)" is not enough, use: evt sandbox > env.sh & . ./env.sh
        """)

    public static let help = CommandSpec(
        name: "help",
        summary: "Show help for evt or one command.",
        operands: [OperandSpec("COMMAND", optional: true, completion: .choices(all.map(\.name)))],
        options: [])

    private static let all: [CommandSpec] = [publish, tail, sandbox]

    /// The commands in the order help lists them (help itself last).
    public static var commands: [CommandSpec] { all + [help] }

    public static func command(named name: String) -> CommandSpec? {
        commands.first { $0.name == name }
    }
}
