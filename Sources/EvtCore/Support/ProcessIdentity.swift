#if canImport(Glibc)
import Glibc
#endif

/// Who this evt is on this machine: the names of consumers and checkpoint holders, and the
/// message that tells how to stop the sandbox.
enum ProcessIdentity {
    static var pid: Int32 { getpid() }

    /// The machine's name; `localhost` when the system will not tell.
    static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return "localhost" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The directory of the running executable, from /proc/self/exe.
    static var executableDirectory: String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}
