/// evt's entry point: parse, dispatch, turn an error into a message on stderr and an exit
/// status. `main.swift` only calls this.
public enum EvtMain {
    public static func run(_ argv: [String], environment: [String: String]) -> Int32 {
        Signals.install()
        var words = Array(argv.dropFirst())
        guard let first = words.first else {
            writeStderr(Help.overview)
            return ExitStatus.usage.rawValue
        }
        words.removeFirst()
        switch first {
        case "--version", "-V", "version":
            writeStdout("evt \(Help.version) (librdkafka \(KafkaConfig.libraryVersion), hiredis \(RedisConnection.libraryVersion))\n")
            return 0
        case "--help", "-h":
            writeStdout(Help.overview)
            return 0
        case "help":
            guard let name = words.first else { writeStdout(Help.overview); return 0 }
            guard let command = CommandTable.command(named: name) else {
                return report(unknownCommand(name))
            }
            writeStdout(Help.text(for: command))
            return 0
        default:
            break
        }
        guard let command = CommandTable.command(named: first) else {
            return report(unknownCommand(first))
        }
        do {
            let arguments = try ArgumentParser.parse(words, for: command)
            if arguments.flag("help") {
                writeStdout(Help.text(for: command))
                return 0
            }
            let status: ExitStatus
            switch command.name {
            case "publish": status = try PublishCommand.run(arguments, environment: environment)
            case "subscribe": status = try SubscribeCommand.run(arguments, environment: environment)
            case "tail": status = try TailCommand.run(arguments, environment: environment)
            case "group-create": status = try GroupCreateCommand.run(arguments, environment: environment)
            case "group-delete": status = try GroupDeleteCommand.run(arguments, environment: environment)
            case "consumers": status = try ConsumersCommand.run(arguments, environment: environment)
            case "claim-pending": status = try ClaimPendingCommand.run(arguments, environment: environment)
            case "replay-from-offset": status = try ReplayCommand.run(arguments, environment: environment)
            case "copy-between": status = try CopyBetweenCommand.run(arguments, environment: environment)
            case "lag": status = try LagCommand.run(arguments, environment: environment)
            case "ls": status = try LsCommand.run(arguments, environment: environment)
            case "trim": status = try TrimCommand.run(arguments, environment: environment)
            case "count": status = try CountCommand.run(arguments, environment: environment)
            case "sandbox": status = try SandboxCommand.run(arguments, environment: environment)
            default: return report(unknownCommand(first))
            }
            return status.rawValue
        } catch let error as EvtError {
            return report(error)
        } catch {
            return report(EvtError(.refused(code: ""), "\(error)"))
        }
    }

    static func unknownCommand(_ name: String) -> EvtError {
        var message = "unknown command \(name)."
        if let guess = ArgumentParser.closest(to: name, among: CommandTable.commands.map(\.name)) {
            message += " Did you mean \(guess)?"
        }
        message += " Run evt help for the list."
        return .usage(message, usage: "evt COMMAND [OPTIONS] [OPERANDS]")
    }

    static func report(_ error: EvtError) -> Int32 {
        Diagnostics.print(error.message)
        if let usage = error.usage { writeStderr("usage: \(usage)\n") }
        // A clean stop after a signal keeps the signal's status (130/143) unless it failed.
        if error.status == .failure || error.status == .usage { return error.status.rawValue }
        return (Signals.exitStatusAfterSignal ?? error.status).rawValue
    }

    // Help, the version and usage lines: a failed write has nowhere to be reported.
    static func writeStdout(_ text: String) { _ = writeAll(1, text) }
    static func writeStderr(_ text: String) { _ = writeAll(2, text) }
}
