import Foundation
import EvtCore

/// A real Redis Cluster for the tests: 3 masters and 3 replicas of Debian's redis-server on
/// 127.0.0.1, each in its own directory, made with `redis-cli --cluster create` and stopped on
/// deinit. Besides redis-cli access it can move a slot the way `redis-cli --cluster reshard`
/// does (so that evt meets ASK and MOVED) and kill a master (so that evt meets a failover).
///
/// Ports come from `TestPorts`, below the ephemeral range, with the cluster bus's port + 10000
/// free too: a killed node restarts on its own port.
public final class RedisCluster: @unchecked Sendable {
    public let transport: RedisTransport
    /// Every node's port, masters of the initial layout first (`ports[0]` is the seed of `url`).
    public private(set) var ports: [Int] = []
    /// Seconds from the first redis-server spawn until the cluster was ready.
    public private(set) var startupSeconds = 0.0

    private var members: [Int: Member] = [:]
    private var killedAt: [Int: Date] = [:]
    private let nodeTimeoutMs = 2000

    /// One redis-server of the cluster.
    private final class Member {
        let port: Int
        let scratch = Scratch()
        let arguments: [String]
        var child: ChildProcess?
        init(port: Int, arguments: (Scratch) -> [String]) {
            self.port = port
            self.arguments = arguments(scratch)
        }
    }

    /// A node as one node's CLUSTER NODES shows it.
    public struct NodeView: Sendable, Equatable {
        public let id: String
        public let port: Int
        public let flags: Set<String>
        /// The master's id, for a replica.
        public let masterID: String?
        /// Served slots (migrating/importing markers left out).
        public let slots: [ClosedRange<Int>]
        public var isMaster: Bool { flags.contains("master") }
        public var isFailed: Bool { flags.contains("fail") || flags.contains("fail?") }
    }

    public var url: String { "\(scheme)://127.0.0.1:\(ports[0])" }

    /// Two seed nodes, as evt takes them: `redis://127.0.0.1:P1,127.0.0.1:P2`.
    public var seedsURL: String { "\(scheme)://127.0.0.1:\(ports[0]),127.0.0.1:\(ports[1])" }

    private var scheme: String { transport.scheme }

    /// The environment that lets evt reach the cluster through `stream:`/`list:`/`channel:`
    /// (EVT_REDIS_URL is the single seed `url`; the test CA and client certificate for TLS).
    public var environment: [String: String] { transport.environment(url: url) }

    /// Starts `masters` masters with `replicasPerMaster` replicas each and waits until every
    /// node says `cluster_state:ok`, all agree on who serves which slot and every replica's
    /// link to its master is up.
    public init(transport: RedisTransport = .plain, masters: Int = 3, replicasPerMaster: Int = 1) throws {
        precondition(masters >= 3, "redis-cli --cluster create wants at least 3 masters")
        self.transport = transport
        let started = Date()
        var lastError: Error?
        // Another process may take a port between the probe and redis-server's bind: new ports.
        for _ in 0..<3 {
            do {
                try start(nodes: masters * (1 + replicasPerMaster), replicasPerMaster: replicasPerMaster)
                startupSeconds = Date().timeIntervalSince(started)
                return
            } catch {
                lastError = error
                stopAll()
                members = [:]
            }
        }
        throw lastError!
    }

    deinit { stopAll() }

    // MARK: - redis-cli

    /// `redis-cli -c -p PORT --raw ARGS…` through the first node still running (P1 unless it
    /// was killed): stdout, raw replies one per line; redis-cli follows MOVED and ASK.
    @discardableResult
    public func cli(_ arguments: [String]) throws -> String {
        try cli(port: livePorts.first ?? ports[0], followRedirects: true, arguments)
    }

    /// `redis-cli -p PORT --raw ARGS…` to that node alone (with `followRedirects`, `-c`).
    @discardableResult
    public func cli(port: Int, followRedirects: Bool = false, _ arguments: [String]) throws -> String {
        let result = try runProcess(["redis-cli"] + cliConnection(port: port) + (followRedirects ? ["-c"] : [])
                                    + ["--raw"] + arguments, timeout: 20)
        return result.stdoutText
    }

    /// redis-cli's options to reach `port` (the test certificates for TLS).
    public func cliConnection(port: Int) -> [String] {
        if case .plain = transport { return ["-p", String(port)] }
        return ["-p", String(port)] + tlsCliOptions
    }

    private var tlsCliOptions: [String] {
        if case .plain = transport { return [] }
        let certificates = TestCertificates.shared
        return ["--tls", "--insecure", "--cacert", certificates.ca,
                "--cert", certificates.clientCertificate, "--key", certificates.clientKey]
    }

    /// XRANGE of `key` on its master as [(id, [field, value, …])] (tab-separated through Lua:
    /// unambiguous for test data without tabs and newlines).
    public func streamEntries(_ key: String) throws -> [(id: String, fields: [String])] {
        let script = "local r = redis.call('XRANGE', KEYS[1], '-', '+') local out = {} for i, e in ipairs(r) do out[i] = e[1] .. '\\t' .. table.concat(e[2], '\\t') end return out"
        let text = try cli(port: try masterPort(forKey: key), ["EVAL", script, "1", key])
        return text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return (parts[0], Array(parts.dropFirst()))
        }
    }

    // MARK: - Topology

    /// Ports of the nodes this fixture has not killed.
    public var livePorts: [Int] { ports.filter { members[$0]?.child != nil } }

    /// CLUSTER NODES as `port` sees it.
    public func nodes(askingPort port: Int? = nil) throws -> [NodeView] {
        let text = try cli(port: port ?? livePorts[0], ["CLUSTER", "NODES"])
        return text.split(whereSeparator: \.isNewline).compactMap(RedisCluster.nodeView)
    }

    /// Masters serving slots now, as the first running node sees it, in the order of their first slot.
    public func masterPorts() throws -> [Int] {
        try nodes().filter { $0.isMaster && !$0.slots.isEmpty }
            .sorted { $0.slots.map(\.lowerBound).min()! < $1.slots.map(\.lowerBound).min()! }.map(\.port)
    }

    /// Replicas of `masterPort` now.
    public func replicaPorts(of masterPort: Int) throws -> [Int] {
        let view = try nodes()
        guard let master = view.first(where: { $0.port == masterPort }) else { return [] }
        return view.filter { $0.masterID == master.id }.map(\.port)
    }

    /// The node id of `port` (CLUSTER MYID).
    public func nodeID(port: Int) throws -> String {
        try cli(port: port, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The slot of `key`, as the server computes it (CLUSTER KEYSLOT).
    public func slot(forKey key: String) throws -> Int {
        let text = try cli(port: livePorts[0], ["CLUSTER", "KEYSLOT", key]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let slot = Int(text) else { throw EvtError(.refused(code: ""), "CLUSTER KEYSLOT \(key) answered \(text)") }
        return slot
    }

    /// The port of the master serving `slot` now.
    public func masterPort(forSlot slot: Int) throws -> Int {
        guard let owner = try nodes().first(where: { node in node.isMaster && node.slots.contains { $0.contains(slot) } }) else {
            throw EvtError(.refused(code: ""), "no master serves slot \(slot)")
        }
        return owner.port
    }

    /// The port of the master serving `key`'s slot now.
    public func masterPort(forKey key: String) throws -> Int { try masterPort(forSlot: try slot(forKey: key)) }

    /// A running master that does not serve `key`'s slot: as a seed, it makes evt meet MOVED.
    public func nonOwnerPort(forKey key: String) throws -> Int {
        let owner = try masterPort(forKey: key)
        let live = Set(livePorts)
        guard let other = try masterPorts().first(where: { $0 != owner && live.contains($0) }) else {
            throw EvtError(.refused(code: ""), "no other master than \(owner)")
        }
        return other
    }

    // MARK: - Faults

    /// SIGSTOP a node: it keeps its connections but reads and answers nothing until
    /// `resume(port:)`. A paused replica makes nothing fail over.
    public func pause(port: Int) throws {
        guard let child = members[port]?.child else { throw EvtError(.refused(code: ""), "no running node on port \(port)") }
        child.send(SIGSTOP)
    }

    public func resume(port: Int) { members[port]?.child?.send(SIGCONT) }

    /// SIGKILL a master (and wait for it): its replica should take over after the node timeout.
    public func killMaster(port: Int) throws {
        guard let member = members[port], let child = member.child else {
            throw EvtError(.refused(code: ""), "no running node on port \(port)")
        }
        guard try nodes(askingPort: port).first(where: { $0.flags.contains("myself") })?.isMaster == true else {
            throw EvtError(.refused(code: ""), "node \(port) is not a master")
        }
        child.send(SIGKILL)
        _ = child.wait()
        member.child = nil
        killedAt[port] = Date()
    }

    /// Waits until a replica serves every slot the killed master `port` served, all running
    /// nodes agree on it and say `cluster_state:ok`. Returns the seconds since the kill.
    @discardableResult
    public func waitForFailover(ofPort port: Int, timeout: Double = 30) throws -> Double {
        let since = killedAt[port] ?? Date()
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            do {
                let state = try consistentState()
                if !state.owners.contains(port) && state.owners.allSatisfy({ livePorts.contains($0) }) {
                    return Date().timeIntervalSince(since)
                }
                last = "slots still served by \(state.owners)"
            } catch {
                last = "\(error)"
            }
            usleep(50_000)
        }
        throw EvtError(.refused(code: ""), "no failover of \(port) within \(timeout) s: \(last)")
    }

    /// Starts a node this fixture killed again, on its port and with its data and nodes.conf:
    /// it rejoins the cluster (as a replica of the node that took over).
    public func restart(port: Int) throws {
        guard let member = members[port], member.child == nil else {
            throw EvtError(.refused(code: ""), "node \(port) is running or unknown")
        }
        try spawn(member)
        try waitForPing([member])
        killedAt[port] = nil
    }

    /// Moves `slot` to the master on `targetPort` the way `redis-cli --cluster reshard` does:
    /// IMPORTING on the target, MIGRATING on the source, batches of CLUSTER GETKEYSINSLOT +
    /// MIGRATE … KEYS until the slot is empty, then SETSLOT NODE on every master. While the
    /// batches run the source answers ASK for keys already moved; `betweenBatches` (given the
    /// number of keys moved so far) and `pause` (seconds) run after each batch, so a test can
    /// run evt mid-move. Waits until all nodes agree on the new owner; returns the keys moved.
    /// Key names must not contain newlines (GETKEYSINSLOT is read with --raw).
    @discardableResult
    public func moveSlot(_ slot: Int, to targetPort: Int, keysPerBatch: Int = 10, pause: Double = 0,
                         betweenBatches: ((Int) throws -> Void)? = nil) throws -> Int {
        let view = try nodes()
        guard let source = view.first(where: { node in node.isMaster && node.slots.contains { $0.contains(slot) } }) else {
            throw EvtError(.refused(code: ""), "no master serves slot \(slot)")
        }
        guard let target = view.first(where: { $0.port == targetPort && $0.isMaster }) else {
            throw EvtError(.refused(code: ""), "\(targetPort) is not a master")
        }
        if source.port == target.port { return 0 }
        try expectOK(port: target.port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id])
        try expectOK(port: source.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id])
        var moved = 0
        while true {
            let keys = try cli(port: source.port, ["CLUSTER", "GETKEYSINSLOT", String(slot), String(keysPerBatch)])
                .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            if keys.isEmpty { break }
            try expectOK(port: source.port, ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS"] + keys)
            moved += keys.count
            try betweenBatches?(moved)
            if pause > 0 { usleep(UInt32(pause * 1_000_000)) }
        }
        // The target first, as redis-cli does: the source's own SETSLOT then ends its MIGRATING.
        let masters = view.filter { $0.isMaster && !$0.isFailed && livePorts.contains($0.port) }.map(\.port)
        for port in [target.port, source.port] + masters.filter({ $0 != target.port && $0 != source.port }) {
            try expectOK(port: port, ["CLUSTER", "SETSLOT", String(slot), "NODE", target.id])
        }
        let deadline = Date().addingTimeInterval(10)
        while true {
            if let state = try? consistentState(), state.owner[slot] == target.port { return moved }
            if Date() > deadline { throw EvtError(.refused(code: ""), "the nodes did not agree on slot \(slot)'s move within 10 s") }
            usleep(20_000)
        }
    }

    // MARK: - Start and stop

    private func start(nodes count: Int, replicasPerMaster: Int) throws {
        ports = try RedisCluster.pickPorts(count)
        for port in ports {
            let member = Member(port: port) { scratch in self.serverArguments(port: port, scratch: scratch) }
            members[port] = member
            try spawn(member)
        }
        try waitForPing(ports.map { members[$0]! })
        let create = try runProcess(["redis-cli"] + tlsCliOptions + ["--cluster", "create"]
                                    + ports.map { "127.0.0.1:\($0)" }
                                    + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"], timeout: 60)
        guard create.status == 0, create.stdoutText.contains("[OK] All 16384 slots covered") else {
            throw EvtError(.refused(code: ""), "redis-cli --cluster create failed (\(create.status)): \(create.stdoutText.suffix(600)) \(create.stderr)")
        }
        // Ready: every node ok and agreeing, every replica linked (a replica that never synced
        // may refuse to take over, see cluster-replica-validity-factor).
        let deadline = Date().addingTimeInterval(30)
        var last = ""
        while Date() < deadline {
            do {
                let state = try consistentState()
                if state.owners.count * (1 + replicasPerMaster) == count && state.replicas.count == count - state.owners.count
                    && state.replicasLinked {
                    return
                }
                last = "masters \(state.owners), replicas \(state.replicas), linked \(state.replicasLinked)"
            } catch {
                last = "\(error)"
            }
            usleep(20_000)
        }
        throw EvtError(.refused(code: ""), "the cluster on \(ports) was not ready within 30 s: \(last)")
    }

    private func serverArguments(port: Int, scratch: Scratch) -> [String] {
        var arguments = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--dir", scratch.path,
                         "--logfile", scratch.file("redis.log"), "--daemonize", "no",
                         "--cluster-enabled", "yes", "--cluster-config-file", scratch.file("nodes.conf"),
                         "--cluster-node-timeout", String(nodeTimeoutMs), "--appendonly", "yes",
                         // A replica's first sync (and a rejoin's) at once, not after the 5 s
                         // that diskless sync waits by default for more replicas to share it.
                         "--repl-diskless-sync-delay", "0",
                         // Exit on SIGTERM even while writing the initial AOF after a sync (a
                         // node refuses then, and never tries again), without waiting for replicas.
                         "--shutdown-on-sigterm", "nosave now force"]
        // TestCertificates.shared only for TLS: making it runs openssl for about a second.
        switch transport {
        case .plain:
            arguments += ["--port", String(port)]
        case .tls(let certificate):
            let certificates = TestCertificates.shared
            arguments += ["--port", "0", "--tls-port", String(port), "--tls-cluster", "yes", "--tls-replication", "yes",
                          "--tls-cert-file", certificate, "--tls-key-file", certificates.serverKey,
                          "--tls-ca-cert-file", certificates.ca, "--tls-auth-clients", "no"]
        case .mutualTLS:
            let certificates = TestCertificates.shared
            arguments += ["--port", "0", "--tls-port", String(port), "--tls-cluster", "yes", "--tls-replication", "yes",
                          "--tls-cert-file", certificates.serverCertificate, "--tls-key-file", certificates.serverKey,
                          "--tls-ca-cert-file", certificates.ca]
        }
        return arguments
    }

    private func spawn(_ member: Member) throws {
        // stdio on /dev/null, as RedisServer: a server that outlives a crashed run must not hold
        // the runner's stdout open.
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        member.child = try ChildProcess.spawn(member.arguments, stdin: devNull, stdout: devNull, stderr: devNull)
    }

    /// Until every member answers PING (all asked at once, every 10 ms, for up to 20 s: six
    /// servers starting at once on a loaded 2-core machine).
    private func waitForPing(_ waiting: [Member]) throws {
        var pending = waiting
        let deadline = Date().addingTimeInterval(20)
        while !pending.isEmpty {
            for member in pending {
                guard let status = member.child?.tryWait() else { continue }
                member.child = nil
                let log = (try? String(contentsOfFile: member.scratch.file("redis.log"), encoding: .utf8)) ?? ""
                throw EvtError(.refused(code: ""), "redis-server exited with \(status) on port \(member.port): \(log.suffix(300))")
            }
            let answers = try cliEach(pending.map(\.port), "PING\n")
            pending.removeAll { answers[$0.port]?.contains("PONG") == true }
            if pending.isEmpty { return }
            if Date() > deadline {
                throw EvtError(.refused(code: ""), "redis-server did not answer PING on \(pending.map(\.port)) within 20 s")
            }
            usleep(10_000)
        }
    }

    /// SIGTERM every running node and wait for each. With `shutdown-on-sigterm force` a node
    /// exits even while it writes its initial AOF (it refuses otherwise, and never exits); a
    /// node still there after 10 s is killed.
    private func stopAll() {
        let running = members.values.compactMap(\.child)
        for child in running { child.send(SIGCONT); child.send(SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        for child in running {
            while child.tryWait() == nil {
                if Date() > deadline {
                    child.send(SIGKILL)
                    _ = child.wait()
                    break
                }
                usleep(5_000)
            }
        }
        for member in members.values { member.child = nil }
    }

    /// Free ports whose port + 10000 (the bus) is free too, none handed out before.
    private static func pickPorts(_ count: Int) throws -> [Int] { try TestPorts.pick(count, busPorts: true) }

    // MARK: - State

    /// What every running node agrees on: each slot's master port, or a thrown reason why not
    /// (a node not ok, two nodes that disagree, a slot nobody serves).
    private struct ClusterState {
        var owner: [Int]
        var owners: [Int]
        var replicas: [Int]
        /// Every running replica says master_link_status:up.
        var replicasLinked: Bool
    }

    private func consistentState() throws -> ClusterState {
        let live = livePorts
        // One redis-cli per node, all at once: CLUSTER INFO's and INFO's `key:value` lines and
        // CLUSTER NODES' lines (8 or more words) cannot be mistaken for each other.
        let answers = try cliEach(live, "CLUSTER INFO\nINFO replication\nCLUSTER NODES\n")
        var agreed: ClusterState?
        var linked = true
        for port in live {
            let lines = (answers[port] ?? "").split(whereSeparator: \.isNewline)
            let values = RedisCluster.keyValues(lines)
            guard values["cluster_state"] == "ok" else {
                throw EvtError(.refused(code: ""), "\(port) says cluster_state:\(values["cluster_state"] ?? "?")")
            }
            if values["role"] == "slave" && values["master_link_status"] != "up" { linked = false }
            let view = lines.compactMap(RedisCluster.nodeView)
            if let odd = view.first(where: { $0.flags.contains("handshake") || $0.flags.contains("noaddr") }) {
                throw EvtError(.refused(code: ""), "\(port) sees \(odd.port) as \(odd.flags.sorted())")
            }
            var owner = [Int](repeating: 0, count: ClusterSlot.count)
            for node in view where node.isMaster {
                for range in node.slots { for slot in range { owner[slot] = node.port } }
            }
            if let free = owner.firstIndex(of: 0) { throw EvtError(.refused(code: ""), "\(port) sees slot \(free) unserved") }
            let masters = view.filter { $0.isMaster && !$0.slots.isEmpty }
            let masterIDs = Set(masters.map(\.id))
            let replicas = view.filter { node in !node.isFailed && node.masterID.map(masterIDs.contains) == true }
            let state = ClusterState(owner: owner, owners: masters.map(\.port).sorted(),
                                     replicas: replicas.map(\.port).sorted(), replicasLinked: true)
            if let agreed {
                guard agreed.owner == state.owner, agreed.replicas == state.replicas else {
                    throw EvtError(.refused(code: ""), "\(port) does not agree with \(live[0]) yet")
                }
            } else {
                agreed = state
            }
        }
        guard var agreed else { throw EvtError(.refused(code: ""), "no node is running") }
        agreed.replicasLinked = linked
        return agreed
    }

    /// redis-cli on each of `ports` at once, reading the commands from stdin: stdout per port.
    private func cliEach(_ ports: [Int], _ commands: String) throws -> [Int: String] {
        let running = try ports.map { port in
            (port, try RunningProcess(["redis-cli"] + cliConnection(port: port) + ["--raw"], stdinData: Data(commands.utf8)))
        }
        var answers: [Int: String] = [:]
        for (port, process) in running { answers[port] = process.wait(timeout: 20).stdoutText }
        return answers
    }

    /// `key:value` lines (INFO, CLUSTER INFO) as a dictionary.
    private static func keyValues(_ lines: [Substring]) -> [String: String] {
        var result: [String: String] = [:]
        for line in lines where !line.contains(" ") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            result[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return result
    }

    /// `ID HOST:PORT@BUS[,HOSTNAME] FLAGS MASTER PING PONG EPOCH LINK SLOT…`.
    private static func nodeView(_ line: Substring) -> NodeView? {
        let fields = line.split(separator: " ")
        guard fields.count >= 8 else { return nil }
        let address = fields[1].split(separator: "@")[0]
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        var slots: [ClosedRange<Int>] = []
        for field in fields.dropFirst(8) where !field.hasPrefix("[") {
            let bounds = field.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 2 { slots.append(bounds[0]...bounds[1]) } else if bounds.count == 1 { slots.append(bounds[0]...bounds[0]) }
        }
        return NodeView(id: String(fields[0]), port: port, flags: Set(fields[2].split(separator: ",").map(String.init)),
                        masterID: fields[3] == "-" ? nil : String(fields[3]), slots: slots)
    }

    private func expectOK(port: Int, _ command: [String]) throws {
        let answer = try cli(port: port, command).trimmingCharacters(in: .whitespacesAndNewlines)
        guard answer == "OK" || answer == "NOKEY" else {
            throw EvtError(.refused(code: ""), "\(command.prefix(3).joined(separator: " ")) on \(port) answered \(answer)")
        }
    }
}
