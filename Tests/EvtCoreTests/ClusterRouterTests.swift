import Testing
@testable import EvtCore

@Suite("Redis Cluster router: slot map and redirect decisions")
struct ClusterRouterTests {
    let seed = RedisServerAddress(host: "127.0.0.1", port: 7000)
    let answering = RedisNode(host: "10.0.0.9", port: 7001)

    /// Slots 0–8191 on 7000, 8192–16383 on 7001.
    func twoMasters() throws -> ClusterSlotMap {
        func range(_ start: Int, _ end: Int, _ port: Int, _ id: String) -> RedisValue {
            .array([.integer(start), .integer(end), .array([.string(Array("127.0.0.1".utf8)), .integer(port), .string(Array(id.utf8))])])
        }
        return try ClusterSlotMap(slotsReply: .array([range(0, 8191, 7000, "a"), range(8192, 16383, 7001, "b")]))
    }

    @Test("an error answer says: elsewhere (MOVED, ASK with ASKING), not now (TRYAGAIN, CLUSTERDOWN), or the command's own")
    func answers() {
        #expect(ClusterAnswer(errorText: "MOVED 3999 127.0.0.1:6381", answeredBy: answering)
                == .elsewhere(slot: 3999, node: RedisNode(host: "127.0.0.1", port: 6381), asking: false))
        #expect(ClusterAnswer(errorText: "ASK 3999 127.0.0.1:6381", answeredBy: answering)
                == .elsewhere(slot: 3999, node: RedisNode(host: "127.0.0.1", port: 6381), asking: true))
        // Redis 7 leaves the host out when it is the answering node's.
        #expect(ClusterAnswer(errorText: "MOVED 12 :6390", answeredBy: answering)
                == .elsewhere(slot: 12, node: RedisNode(host: "10.0.0.9", port: 6390), asking: false))
        #expect(ClusterAnswer(errorText: "TRYAGAIN Multiple keys request during rehashing of slot", answeredBy: answering) == .notNow(code: "TRYAGAIN"))
        #expect(ClusterAnswer(errorText: "CLUSTERDOWN The cluster is down", answeredBy: answering) == .notNow(code: "CLUSTERDOWN"))
        for text in ["WRONGTYPE Operation against a key holding the wrong kind of value", "UNBLOCKED the stream key no longer exists",
                     "LOADING Redis is loading the dataset in memory", "ERR unknown command", "moved 1 h:1", ""] {
            #expect(ClusterAnswer(errorText: text, answeredBy: answering) == .own, "\(text)")
        }
    }

    @Test("a MOVED answer moves its slot on the map; ASK and other answers leave the map as it is")
    func movedUpdatesTheMap() throws {
        let router = ClusterRouter(seed, slots: try twoMasters())
        let key = "foo"   // slot 12182: on 7001
        #expect(router.node(forKey: key) == RedisNode(host: "127.0.0.1", port: 7001))
        var course = ClusterRedirects(timeoutMs: 30_000)
        let slot = ClusterSlot.of(key)

        #expect(router.decide("ASK \(slot) 127.0.0.1:7000", answeredBy: answering, course: &course, now: 0)
                == .redirect(RedisNode(host: "127.0.0.1", port: 7000), asking: true))
        #expect(router.node(forKey: key)?.port == 7001)
        #expect(router.decide("TRYAGAIN Multiple keys", answeredBy: answering, course: &course, now: 0) == .retry(afterMs: 50))
        #expect(router.node(forKey: key)?.port == 7001)

        #expect(router.decide("MOVED \(slot) 127.0.0.1:7000", answeredBy: answering, course: &course, now: 0)
                == .redirect(RedisNode(host: "127.0.0.1", port: 7000), asking: false))
        #expect(router.node(forKey: key)?.port == 7000)
        #expect(router.node(forKey: "bar")?.port == 7000)   // slot 5061: not touched
        #expect(router.slots?.master(forSlot: slot + 1)?.port == 7001)   // only the slot named moves

        // A master the map did not know: added, without an id until the map is read again.
        _ = router.classify("MOVED \(slot) 127.0.0.1:7002", answeredBy: answering)
        #expect(router.node(forKey: key)?.port == 7002)
        #expect(router.slots?.masters.map(\.port) == [7000, 7001, 7002])
        #expect(router.slots?.masters.last?.id == "")

        // The command's own answer: nothing to do, nothing changes.
        #expect(router.decide("WRONGTYPE Operation", answeredBy: answering, course: &course, now: 0) == .answer)
        #expect(router.node(forKey: key)?.port == 7002)
    }

    @Test("a slot map assignment counts the slots no master served")
    func assigningSlots() throws {
        var map = try ClusterSlotMap(slotsReply: .array([
            .array([.integer(0), .integer(99), .array([.string(Array("h".utf8)), .integer(1), .string(Array("a".utf8))])]),
        ]))
        #expect(map.unassignedSlots == 16284)
        map.assign(slot: 100, to: RedisNode(host: "h", port: 1))
        #expect(map.unassignedSlots == 16283 && map.master(forSlot: 100)?.id == "a" && map.masters.count == 1)
        map.assign(slot: 5, to: RedisNode(host: "h", port: 2))
        #expect(map.unassignedSlots == 16283 && map.master(forSlot: 5)?.port == 2 && map.masters.count == 2)
        map.assign(slot: 16384, to: RedisNode(host: "h", port: 3))   // out of range: ignored
        #expect(map.masters.count == 2)
    }

    @Test("a standalone server (no map) is never routed; a MOVED answer shows a cluster whose map is then read")
    func standalone() {
        let router = ClusterRouter(seed)
        #expect(router.slots == nil && router.node(forKey: "foo") == nil)
        var course = ClusterRedirects(timeoutMs: 1000)
        #expect(router.decide("MOVED 12182 127.0.0.1:7001", answeredBy: answering, course: &course, now: 0)
                == .redirect(RedisNode(host: "127.0.0.1", port: 7001), asking: false))
        #expect(router.slots == nil)
    }

    @Test("MOVED and ASK are followed at once, 16 in a row at most; a command that goes through starts the count again")
    func redirectLimit() {
        var course = ClusterRedirects(timeoutMs: 30_000)
        let node = RedisNode(host: "h", port: 1)
        for _ in 1...ClusterRedirects.maxRedirects {
            #expect(course.next(.elsewhere(slot: 1, node: node, asking: false), now: 0) == .redirect(node, asking: false))
        }
        guard case .fail(let cause, let reason) = course.next(.elsewhere(slot: 1, node: node, asking: true), now: 0) else {
            Issue.record("a 17th redirect in a row was followed")
            return
        }
        #expect(cause == .transient(code: "CLUSTERDOWN"))
        #expect(reason.contains("16 times in a row") && reason.contains("redis-cli --cluster check"), "\(reason)")
        course.applied()
        #expect(course.next(.elsewhere(slot: 1, node: node, asking: true), now: 0) == .redirect(node, asking: true))
        #expect(course.next(.own, now: 0) == .answer)
    }

    @Test("TRYAGAIN and CLUSTERDOWN are waited out: 50 ms doubled up to 1 s, until --timeout since the first")
    func notNowLimit() {
        var course = ClusterRedirects(timeoutMs: 3000)
        var now = 1_000_000
        var pauses: [Int] = []
        while case .retry(let pause) = course.next(.notNow(code: "CLUSTERDOWN"), now: now) {
            pauses.append(pause)
            now += pause
        }
        // 50+100+200+400+800+1000 = 2550 ms; another 1000 would pass 3 s.
        #expect(pauses == [50, 100, 200, 400, 800, 1000])
        guard case .fail(let cause, let reason) = course.next(.notNow(code: "CLUSTERDOWN"), now: now) else {
            Issue.record("not given up")
            return
        }
        #expect(cause == .transient(code: "CLUSTERDOWN"))
        #expect(reason.contains("CLUSTERDOWN for --timeout (3s)"), "\(reason)")
        // Pauses do not count as redirects, and a command that goes through starts them again.
        course.applied()
        #expect(course.next(.notNow(code: "TRYAGAIN"), now: now) == .retry(afterMs: 50))
        #expect(course.redirectsInARow == 0)
    }

    @Test("a copy, which starts over instead of following: MOVED at once, ASK and CLUSTERDOWN after a pause, other causes not its business")
    func startingOver() {
        var course = ClusterRedirects(timeoutMs: 30_000)
        #expect(course.next(after: .moved(code: "MOVED"), now: 0) == .retry(afterMs: 0))
        #expect(course.next(after: .moved(code: "ASK"), now: 0) == .retry(afterMs: 50))
        #expect(course.next(after: .moved(code: "UNBLOCKED"), now: 0) == .retry(afterMs: 0))
        #expect(course.next(after: .transient(code: "CLUSTERDOWN"), now: 100) == .retry(afterMs: 100))
        #expect(course.next(after: .transient(code: "LOADING"), now: 0) == .answer)
        #expect(course.next(after: .connectionLost, now: 0) == .answer)
        #expect(course.redirectsInARow == 2)
        for _ in 3...ClusterRedirects.maxRedirects { #expect(course.next(after: .moved(code: "MOVED"), now: 0) == .retry(afterMs: 0)) }
        guard case .fail = course.next(after: .moved(code: "MOVED"), now: 0) else {
            Issue.record("a 17th MOVED in a row was followed")
            return
        }
    }
}
