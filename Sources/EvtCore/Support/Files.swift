#if canImport(Glibc)
import Glibc
#endif

/// The whole file as text, or nil with errno set.
func readWholeFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 { if errno == EINTR { continue }; return nil }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The FILE operands in order (`-` or none: stdin), all opened before anything is sent: one
/// that cannot be opened, or is a directory, is a usage error before any line is read.
struct InputFiles {
    let files: [(fd: Int32, path: String?)]

    init(paths: [String]) throws {
        files = try (paths.isEmpty ? ["-"] : paths).map { path in
            if path == "-" { return (0, nil) }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw EvtError.usage("cannot open \(path): \(String(cString: strerror(errno))).")
            }
            // A directory opens, and fails only when read: after the files before it were sent.
            var status = stat()
            if fstat(fd, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR {
                close(fd)
                throw EvtError.usage("cannot read \(path): it is a directory; name the files in it instead.")
            }
            return (fd, path)
        }
    }

    /// How much of the inputs was read, when they are regular files (a pipe has no size):
    /// the files before the one being read, and how far into it.
    var shareRead: Double? {
        var total: Int64 = 0
        var read: Int64 = 0
        var current = true   // files after the one being read have position 0
        for file in files {
            var status = stat()
            guard fstat(file.fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
            let position = current ? lseek(file.fd, 0, SEEK_CUR) : 0
            if position < status.st_size { current = false }
            total += Int64(status.st_size)
            read += Int64(max(position, 0))
        }
        return total > 0 ? min(Double(read) / Double(total), 1) : nil
    }

    /// ` (FILE line N)` for a named file; nothing for stdin, where the line number says it all.
    static func place(_ path: String?, _ line: Int) -> String {
        path.map { " (\($0) line \(line))" } ?? ""
    }
}

/// A directory under $TMPDIR (or /tmp) removed with everything in it on deinit.
final class TemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw EvtError(.refused(code: ""), "cannot create a temporary directory in \(base): \(String(cString: strerror(errno))).")
        }
        path = String(cString: made)
    }

    deinit {
        // The sandbox writes plain files only (redis.log, dump/aof files).
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { unlink("\(path)/\(name)") }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}

/// Whether `path` names a regular file (or a link to one).
func isRegularFile(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
}

/// A file's text, or a usage error that names it as `what` and says why it cannot be read.
func readText(_ path: String, what: String) throws(EvtError) -> String {
    guard let text = readWholeFile(path) else {
        throw EvtError.usage("cannot read \(what) \(path): \(String(cString: strerror(errno))).")
    }
    return text
}
