/// `evt help` and `evt help COMMAND`, rendered from the option tables.
public enum Help {
    public static let version = "0.1.0"

    public static var overview: String {
        var text = """
        evt \(version): produce, consume and replay events across Redis and Kafka, as NDJSON.

        usage: evt COMMAND [OPTIONS] [OPERANDS]

        commands:

        """
        let width = CommandTable.commands.map(\.name.count).max()! + 2
        for command in CommandTable.commands {
            text += "  " + command.name.padded(to: width) + command.summary + "\n"
        }
        text += """

        endpoints:
          stream:NAME  list:NAME  channel:NAME     Redis (server from EVT_REDIS_URL, default redis://127.0.0.1:6379)
          topic:NAME[/PARTITION]                   Kafka (brokers from EVT_KAFKA_BROKERS, default 127.0.0.1:9092)
          redis://[[USER:]PASSWORD@]HOST[:PORT][/DB]/stream|list|channel/NAME
          kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC[/PARTITION]

        exit status: 0 ok, 1 failed at run time (e.g. not delivered), 2 usage, 3 bad input, 130/143 signal.
        Run 'evt help COMMAND' or 'man evt' for more.

        """
        return text
    }

    public static func text(for command: CommandSpec) -> String {
        var text = "usage: \(command.usageLine)\n\n\(command.summary)\n\noptions:\n"
        let width = min(command.options.map(\.displayName.count).max()! + 2, 30)
        for option in command.options {
            let name = option.displayName
            if name.count + 2 > width {
                text += "  \(name)\n" + String(repeating: " ", count: width + 2) + option.help + "\n"
            } else {
                text += "  " + name.padded(to: width) + option.help + "\n"
            }
        }
        if !command.notes.isEmpty { text += "\n\(command.notes)\n" }
        text += "\nSee man evt-\(command.name) for details and examples.\n"
        return text
    }
}

extension String {
    func padded(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
