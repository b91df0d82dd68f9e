import Foundation
import Synchronization
import EvtCore

/// Ports for the test servers (redis-server, Redis Cluster nodes). They come from 10000–22767,
/// below the kernel's ephemeral range (32768–60999 by default), where every outgoing
/// connection and every bind to port 0 (the mock Kafka brokers', freeLoopbackPort's) takes its
/// port: a server restarted on its port (a kill, then start again) could find it taken by one
/// of those meanwhile. No port is handed out twice in this process, so no other test's server
/// takes the port of one that is down for a restart; the start is random, so test runs in
/// other processes rarely try the same ones.
public enum TestPorts {
    private static let handedOut = Mutex(Set<Int>())
    static let range = 10000...22767

    /// `count` free ports; with `busPorts`, port + 10000 of each is free too (a cluster node's
    /// bus, which must stay below 65536 and, here, below the ephemeral range).
    public static func pick(_ count: Int, busPorts: Bool = false) throws -> [Int] {
        try handedOut.withLock { taken in
            var chosen: [Int] = []
            for _ in 0..<5000 where chosen.count < count {
                let port = Int.random(in: range)
                let ports = busPorts ? [port, port + 10000] : [port]
                guard ports.allSatisfy({ !taken.contains($0) && isFree($0) }) else { continue }
                taken.formUnion(ports)
                chosen.append(port)
            }
            guard chosen.count == count else { throw EvtError(.refused(code: ""), "cannot find \(count) free ports on 127.0.0.1") }
            return chosen
        }
    }

    public static func pick() throws -> Int { try pick(1)[0] }

    /// Whether a listening socket could bind 127.0.0.1:`port` now (as redis-server does, with
    /// SO_REUSEADDR, so a port in TIME_WAIT counts as free).
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
