/// The exit statuses of the contract (CONTRACT.md, "Exit status"); `sandbox --run` passes on
/// its command's status, whatever it is.
public struct ExitStatus: RawRepresentable, Equatable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let success = ExitStatus(rawValue: 0)
    /// Failure at run time: not delivered, server error, lost connection.
    public static let failure = ExitStatus(rawValue: 1)
    /// Unknown command or option, bad endpoint, unsupported feature.
    public static let usage = ExitStatus(rawValue: 2)
    /// Bad input data.
    public static let badInput = ExitStatus(rawValue: 3)
    /// `evt lag`: a group is beyond --max-lag or --max-lag-age (and nothing else went wrong).
    public static let lagExceeded = ExitStatus(rawValue: 4)
    public static let interrupted = ExitStatus(rawValue: 130)
    public static let terminated = ExitStatus(rawValue: 143)
}

/// Why something failed, as callers decide on it (retry, resume, stop): never the message text.
public enum FailureCause: Sendable, Equatable {
    /// The connection could not be made, was lost, or the server stopped answering: what was
    /// sent since the last answer may or may not have been applied. The same whichever
    /// backend raised it.
    case connectionLost
    /// The server answered "not now" (Redis LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN):
    /// nothing of the request was applied, and the same request may succeed later.
    case transient(code: String)
    /// The server or the client library said no, with its code (a Redis error word such as
    /// WRONGTYPE, a librdkafka error name); empty when it gave none. Also what the system
    /// refused (a file, a child process, stdout) and what evt will not do in the state it
    /// found (a group with active members, a subscription that lost messages): the same
    /// request would fail again, so nothing retries it.
    case refused(code: String)
    /// A Redis Cluster node said the key's slot is served elsewhere (MOVED), is moving there
    /// (ASK), or that a blocked read's key went away (UNBLOCKED, after a migration): nothing
    /// was applied, and the request goes through at once where the slot is now.
    case moved(code: String)
    /// The input data is bad (exit 3).
    case badInput
    /// The command line asks for something impossible (exit 2).
    case usage
    /// SIGINT or SIGTERM came while evt waited for a server that did not answer: a clean stop
    /// (exit 130 or 143), with nothing half done.
    case stopped
    /// Another copy holds what this one needs (a copy's checkpoint, by its lease): nothing
    /// was written, or this copy stopped writing once it lost the checkpoint (exit 1).
    case claimed

    var isMoved: Bool {
        if case .moved = self { return true }
        return false
    }

    /// A follower (`-f`) waits and tries again after these.
    public var isRetriable: Bool {
        switch self {
        case .connectionLost, .transient, .moved: return true
        case .refused, .badInput, .usage, .stopped, .claimed: return false
        }
    }
}

/// The one error type every command throws. `message` says what went wrong and what to do;
/// it never contains a password (endpoints print themselves redacted).
public struct EvtError: Error, CustomStringConvertible, Sendable {
    public var cause: FailureCause
    public var message: String
    /// For usage errors: the usage line of the command that was being parsed.
    public var usage: String?

    public init(_ cause: FailureCause, _ message: String, usage: String? = nil) {
        self.cause = cause
        self.message = message
        self.usage = usage
    }

    public var status: ExitStatus {
        switch cause {
        case .usage: return .usage
        case .badInput: return .badInput
        case .connectionLost, .transient, .moved, .refused, .claimed: return .failure
        case .stopped: return Signals.exitStatusAfterSignal ?? .failure
        }
    }

    public static func usage(_ message: String, usage: String? = nil) -> EvtError {
        EvtError(.usage, message, usage: usage)
    }
    public static func badInput(_ message: String) -> EvtError { EvtError(.badInput, message) }
    /// `reason` is short ("Connection reset by peer"); callers that know the server say which.
    public static func connectionLost(_ reason: String) -> EvtError { EvtError(.connectionLost, reason) }

    public var isRetriable: Bool { cause.isRetriable }
    public var description: String { message }
}

/// `text` (a server's or a library's message, or another error's) as a clause of a longer
/// message that goes on after it with ". ", "; " or ": ": without the period it may end with,
/// so that no message reads "user is disabled.. Check".
func clause(_ text: String) -> Substring {
    text.hasSuffix(".") && !text.hasSuffix("..") ? text.dropLast() : Substring(text)
}

extension Error {
    /// True for an EvtError a follower should wait out (a lost connection, a "not now").
    var isRetriable: Bool { (self as? EvtError)?.isRetriable ?? false }
}
