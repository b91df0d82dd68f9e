#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawnp, an empty signal mask and default signal
/// dispositions — Foundation.Process would pass on Dispatch's blocked mask, and a
/// redis-server started that way ignores SIGTERM (SWIFT-C-NOTES).
public final class ChildProcess: @unchecked Sendable {
    public let pid: Int32
    private var status: Int32?

    /// `environment` nil inherits ours. `stdin`/`stdout`/`stderr`: a descriptor to put on
    /// 0/1/2 in the child, or nil to inherit ours, or with `quiet` to read and write /dev/null.
    public static func spawn(_ arguments: [String], environment: [String: String]? = nil,
                             stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil,
                             quiet: Bool = false) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (source, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            if let source {
                posix_spawn_file_actions_adddup2(&actions, source, target)
            } else if quiet {
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_RDWR, 0)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result: Int32
        if let environment {
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { envp.forEach { free($0) } }
            result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        } else {
            result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        }
        guard result == 0 else {
            throw EvtError(.refused(code: ""), "cannot run \(arguments[0]): \(String(cString: strerror(result))).")
        }
        return ChildProcess(pid: pid)
    }

    private init(pid: Int32) { self.pid = pid }

    /// Runs `sh -c COMMAND` with `input` on its stdin and waits for it: its exit status. A
    /// command that does not read its stdin is fine. `what` names the command in errors.
    static func runShell(_ command: String, input: ArraySlice<UInt8>, what: String) throws -> Int32 {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw EvtError(.refused(code: ""), "cannot run \(what): \(String(cString: strerror(errno)))")
        }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let child: ChildProcess
        do {
            child = try spawn(["/bin/sh", "-c", command], stdin: fds[0])
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        close(fds[0])
        _ = input.withUnsafeBytes { writeAll(fds[1], $0) }
        close(fds[1])
        return child.wait()
    }

    /// Waits for the exit: the exit status, or 128 + the signal that killed it.
    public func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return record(raw)
    }

    /// The status if it has exited, without waiting.
    public func tryWait() -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        return record(raw)
    }

    public func send(_ signal: Int32) {
        if status == nil { kill(pid, signal) }
    }

    /// Asks the child to end (SIGTERM), unless it has, and waits for it.
    func terminateAndWait() {
        send(SIGTERM)
        _ = wait()
    }

    /// Ends the child at once (SIGKILL), unless it has, and waits for it.
    func killAndWait() {
        send(SIGKILL)
        _ = wait()
    }

    private func record(_ raw: Int32) -> Int32 {
        let termination = raw & 0x7F
        let code = termination == 0 ? (raw >> 8) & 0xFF : 128 + termination
        status = code
        return code
    }
}
