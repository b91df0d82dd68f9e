/// `evt sandbox`: a throwaway redis-server and an in-process mock Kafka cluster, for trying
/// evt and for its tests. Prints the environment to use them, or runs a command with it.
public enum SandboxCommand {
    public static func run(_ arguments: ParsedArguments, environment: [String: String]) throws -> ExitStatus {
        let spec = arguments.spec
        guard arguments.operands.isEmpty else {
            throw EvtError.usage("sandbox takes no operands; to run a command use --run 'COMMAND'.", usage: spec.usageLine)
        }
        var brokers = 1
        if let text = arguments.value("brokers") {
            guard let number = Int(text), (1...16).contains(number) else {
                throw EvtError.usage("--brokers \(text): expected 1 to 16.", usage: spec.usageLine)
            }
            brokers = number
        }
        let topics: [(String, Int)] = try arguments.values("topic").map { word in
            guard let colon = word.lastIndex(of: ":"), let partitions = Int(word[word.index(after: colon)...]),
                  partitions > 0, colon != word.startIndex else {
                throw EvtError.usage("--topic \(word): expected NAME:PARTITIONS, e.g. orders:4.", usage: spec.usageLine)
            }
            return (String(word[..<colon]), partitions)
        }

        let directory = try TemporaryDirectory(prefix: "evt-sandbox")
        let redis = try SandboxRedis(directory: directory.path)
        defer { redis.stop() }
        let kafka = try KafkaMockCluster(brokers: brokers)
        for (name, partitions) in topics { try kafka.createTopic(name, partitions: partitions) }
        let variables = ["EVT_REDIS_URL": "redis://127.0.0.1:\(redis.port)",
                         "EVT_KAFKA_BROKERS": kafka.bootstrapServers]

        if let command = arguments.value("run") {
            var childEnvironment = environment
            for (name, value) in variables { childEnvironment[name] = value }
            // The command finds this very evt first, built or installed.
            if let directory = ProcessIdentity.executableDirectory {
                childEnvironment["PATH"] = directory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            }
            let child = try ChildProcess.spawn(["/bin/sh", "-c", command], environment: childEnvironment)
            // A SIGINT from the terminal reaches the command too; a SIGTERM sent to evt alone
            // is passed on, so the command ends and the brokers are torn down after it.
            var forwarded = false
            while true {
                if let status = child.tryWait() { return ExitStatus(rawValue: status) }
                if Signals.stopRequested && !forwarded {
                    forwarded = true
                    child.send(Signals.stopSignal)
                }
                // Once the stop is passed on, the stop no longer cuts the wait short.
                if forwarded { sleepMilliseconds(50) } else { Signals.sleep(milliseconds: 50) }
            }
        }

        let output = OutputWriter()
        for name in variables.keys.sorted() {
            output.buffer += Array("export \(name)=\(Shell.quoted(variables[name]!))\n".utf8)
        }
        try? output.flush()
        Diagnostics.print("sandbox running (redis-server pid \(redis.pid), \(brokers) mock Kafka broker\(brokers == 1 ? "" : "s")); stop it with Ctrl-C or kill \(ProcessIdentity.pid).")
        while !Signals.stopRequested {
            Signals.sleep(milliseconds: 1000)
            if let status = redis.exitStatus() {
                throw EvtError(.refused(code: ""), "the sandbox's redis-server exited unexpectedly (status \(status)). Its log said: \(SandboxRedis.logTail(directory.path))")
            }
        }
        return Signals.exitStatusAfterSignal ?? .success
    }
}
