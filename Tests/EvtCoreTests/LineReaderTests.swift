import Foundation
import Testing
@testable import EvtCore
#if canImport(Glibc)
import Glibc
#endif

// LineReader reads a file descriptor in 1 MiB blocks; these tests feed it through a temporary
// file (reads of whole blocks) and through a pipe written by another thread (short reads).

private struct Line: Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let number: Int
    init(_ bytes: [UInt8], _ number: Int) { self.bytes = bytes; self.number = number }
    init(_ text: String, _ number: Int) { self.init(Array(text.utf8), number) }
    var description: String {
        bytes.count > 40 ? "#\(number): \(bytes.count) bytes" : "#\(number): \(String(decoding: bytes, as: UTF8.self).debugDescription)"
    }
}

/// Where the bytes come from.
extension LineReaderTests {
    enum Source: String, CaseIterable, Sendable, CustomStringConvertible {
        case file, pipe
        var description: String { rawValue }
    }
}

private typealias Source = LineReaderTests.Source

private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, chunk: Int = .max) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let written = write(fd, bytes.baseAddress! + offset, min(chunk, bytes.count - offset))
        if written < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += written
    }
    return true
}

/// A temporary file holding `content` (then extended with zeros to `size`), open for reading
/// at its start; it is unlinked at once and closed after `body`.
private func withTemporaryFile<R>(_ content: [UInt8], size: Int? = nil, _ body: (Int32) throws -> R) throws -> R {
    var template = Array("/tmp/evt-linereader-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    try #require(fd >= 0)
    unlink(template)
    defer { close(fd) }
    try #require(content.withUnsafeBytes { writeAll(fd, $0) })
    if let size { try #require(ftruncate(fd, off_t(size)) == 0) }
    try #require(lseek(fd, 0, SEEK_SET) == 0)
    return try body(fd)
}

/// The read end of a pipe that another thread fills with `content`, `chunk` bytes per write,
/// then closes. Whatever `body` leaves unread is drained, so the writer never blocks or
/// gets SIGPIPE.
private func withPipe<R>(_ content: [UInt8], chunk: Int = 64 << 10, _ body: (Int32) throws -> R) throws -> R {
    var fds: [Int32] = [-1, -1]
    try #require(pipe(&fds) == 0)
    let (readFD, writeFD) = (fds[0], fds[1])
    let finished = DispatchSemaphore(value: 0)
    let writer = Thread {
        _ = content.withUnsafeBytes { writeAll(writeFD, $0, chunk: chunk) }
        close(writeFD)
        finished.signal()
    }
    writer.start()
    defer {
        var sink = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = sink.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if count > 0 || (count < 0 && errno == EINTR) { continue }
            break
        }
        finished.wait()
        close(readFD)
    }
    return try body(readFD)
}

private func withSource<R>(_ source: Source, _ content: [UInt8], _ body: (Int32) throws -> R) throws -> R {
    switch source {
    case .file: return try withTemporaryFile(content, body)
    case .pipe: return try withPipe(content, body)
    }
}

/// Every line until the end of input or the first error.
private func readAll(_ fd: Int32, maxLineLength: Int? = nil) -> (lines: [Line], error: (any Error)?) {
    let reader = maxLineLength.map { LineReader(fd: fd, maxLineLength: $0) } ?? LineReader(fd: fd)
    var lines: [Line] = []
    do {
        while let (bytes, number) = try reader.next() { lines.append(Line(Array(bytes), number)) }
        // At the end it stays at the end.
        #expect(try reader.next() == nil)
    } catch {
        return (lines, error)
    }
    return (lines, nil)
}

private func lines(_ source: Source, _ content: [UInt8], maxLineLength: Int? = nil) throws -> [Line] {
    let (lines, error) = try withSource(source, content) { readAll($0, maxLineLength: maxLineLength) }
    #expect(error == nil, "\(error.map { "\($0)" } ?? "")")
    return lines
}

/// Distinct printable bytes (never '\n'), so a misplaced byte shows.
private func pattern(_ length: Int, seed: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: length)
    bytes.withUnsafeMutableBufferPointer { buffer in
        for index in 0..<length { buffer[index] = UInt8(0x21 + (index &* 7 &+ seed) % 90) }
    }
    return bytes
}

private func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.count == b.count && a.withUnsafeBytes { a in b.withUnsafeBytes { b in a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
}

private let newline: [UInt8] = [0x0A]

@Suite("LineReader")
struct LineReaderTests {
    @Test("splits lines, keeps empty ones, numbers them from 1", arguments: Source.allCases)
    func splits(source: Source) throws {
        #expect(try lines(source, Array("a\nbb\n\nccc\n{\"x\":1}\n".utf8))
                == [Line("a", 1), Line("bb", 2), Line("", 3), Line("ccc", 4), Line("{\"x\":1}", 5)])
    }

    @Test("edge inputs: nothing, lone newlines, a last line without a newline", arguments: [
        ("", []), ("\n", [""]), ("\n\n", ["", ""]), ("x", ["x"]), ("x\n", ["x"]), ("\nx", ["", "x"]),
        ("a\nlast", ["a", "last"]), ("a\n\n\nb", ["a", "", "", "b"]),
    ] as [(String, [String])])
    func edges(input: String, expected: [String]) throws {
        let expectedLines = expected.enumerated().map { Line($0.element, $0.offset + 1) }
        #expect(try lines(.file, Array(input.utf8)) == expectedLines)
        #expect(try lines(.pipe, Array(input.utf8)) == expectedLines)
    }

    @Test("a \\r before the newline is left in the line for the caller (publish strips it)", arguments: Source.allCases)
    func carriageReturn(source: Source) throws {
        #expect(try lines(source, Array("a\r\nb\r\n\r\nc\rd\ne\r".utf8))
                == [Line("a\r", 1), Line("b\r", 2), Line("\r", 3), Line("c\rd", 4), Line("e\r", 5)])
    }

    @Test("a writer that sends one byte at a time")
    func tinyWrites() throws {
        let content = Array("abc\ndef\n\nxyz".utf8)
        let (result, error) = try withPipe(content, chunk: 1) { readAll($0) }
        #expect(error == nil)
        #expect(result == [Line("abc", 1), Line("def", 2), Line("", 3), Line("xyz", 4)])
    }

    @Test("a newline just before, at or just after the 1 MiB block boundary", arguments: Source.allCases, [-2, -1, 0, 1, 2])
    func blockBoundary(source: Source, delta: Int) throws {
        let length = (1 << 20) + delta
        let first = pattern(length, seed: 1), third = pattern(length, seed: 2)
        let content = first + newline + Array("b\n".utf8) + third + newline + Array("tail".utf8)
        let result = try lines(source, content)
        try #require(result.count == 4)
        #expect(sameBytes(result[0].bytes, first))
        #expect(result[1] == Line("b", 2))
        #expect(sameBytes(result[2].bytes, third))
        #expect(result[3] == Line("tail", 4))
        #expect(result.map(\.number) == [1, 2, 3, 4])
    }

    @Test("lines of 1 MiB - 1, 1 MiB and 1 MiB + 1 in a row, the last without a newline", arguments: Source.allCases)
    func megabyteLines(source: Source) throws {
        let lengths = [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, 0, 1, (1 << 20) + 1, (1 << 20) - 1, 3 << 19, 1 << 20]
        let expected = lengths.enumerated().map { pattern($0.element, seed: $0.offset) }
        var content: [UInt8] = []
        for (index, line) in expected.enumerated() {
            content += line
            if index < expected.count - 1 { content += newline }
        }
        let result = try lines(source, content)
        try #require(result.count == expected.count)
        for (index, line) in result.enumerated() {
            #expect(line.number == index + 1)
            #expect(sameBytes(line.bytes, expected[index]), "line \(index + 1): \(line.bytes.count) bytes, expected \(expected[index].count)")
        }
    }

    @Test("many short lines totalling more than 3 MiB", arguments: Source.allCases)
    func manyShortLines(source: Source) throws {
        let count = 520_000
        var content: [UInt8] = []
        content.reserveCapacity(count * 8)
        for index in 0..<count {
            content.append(contentsOf: repeatElement(UInt8(ascii: "a") + UInt8(index % 26), count: index % 13))
            content.append(0x0A)
        }
        #expect(content.count > 3 << 20)
        let (seen, mismatches) = try withSource(source, content) { fd -> (Int, [Int]) in
            let reader = LineReader(fd: fd)
            var seen = 0
            var mismatches: [Int] = []
            while let (bytes, number) = try reader.next() {
                let expectedByte = UInt8(ascii: "a") + UInt8(seen % 26)
                if number != seen + 1 || bytes.count != seen % 13 || bytes.contains(where: { $0 != expectedByte }) {
                    if mismatches.count < 5 { mismatches.append(seen + 1) }
                }
                seen += 1
            }
            return (seen, mismatches)
        }
        #expect(seen == count)
        #expect(mismatches.isEmpty, "first bad lines: \(mismatches)")
    }

    @Test("a 16 MiB line is accepted with the default limit", arguments: Source.allCases)
    func sixteenMegabyteLine(source: Source) throws {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 16 << 20)
        let result = try lines(source, long + newline + Array("{}\n".utf8))
        try #require(result.count == 2)
        #expect(result[0].number == 1)
        #expect(sameBytes(result[0].bytes, long))
        #expect(result[1] == Line("{}", 2))
    }

    @Test("a line over the limit throws LineTooLong with its line number and the limit", arguments: [
        // (content, limit, lines read before, line number reported)
        ("ok\n" + String(repeating: "a", count: 100) + "\n" + String(repeating: "b", count: 101) + "\nafter\n", 100, 2, 3),
        ("ok\n" + String(repeating: "b", count: 101), 100, 1, 2),             // the last line, without a newline
        (String(repeating: "b", count: 5000) + "\n", 100, 0, 1),
        ("\n\n" + String(repeating: "c", count: 1000), 999, 2, 3),
    ] as [(String, Int, Int, Int)])
    func tooLong(content: String, limit: Int, before: Int, line: Int) throws {
        for source in Source.allCases {
            let (result, error) = try withSource(source, Array(content.utf8)) { readAll($0, maxLineLength: limit) }
            #expect(result.count == before, "\(source)")
            let tooLong = error as? LineTooLong
            #expect(tooLong?.line == line, "\(source): \(error.map { "\($0)" } ?? "no error")")
            #expect(tooLong?.limit == limit)
        }
    }

    @Test("a line of exactly the limit is accepted, with or without a newline", arguments: Source.allCases)
    func exactlyTheLimit(source: Source) throws {
        let line = String(repeating: "a", count: 100)
        #expect(try lines(source, Array("ok\n\(line)\n".utf8), maxLineLength: 100) == [Line("ok", 1), Line(line, 2)])
        #expect(try lines(source, Array("ok\n\(line)".utf8), maxLineLength: 100) == [Line("ok", 1), Line(line, 2)])
        let megabyte = pattern(1 << 20, seed: 3)
        let result = try lines(source, Array("a\n".utf8) + megabyte + newline, maxLineLength: 1 << 20)
        #expect(result.count == 2 && sameBytes(result[1].bytes, megabyte))
    }

    @Test("a line longer than the buffer and the limit is refused without reading it all", arguments: Source.allCases)
    func tooLongWhileReading(source: Source) throws {
        let content = Array("a\nb\n".utf8) + [UInt8](repeating: UInt8(ascii: "z"), count: 3 << 20) + newline + Array("c\n".utf8)
        let (result, error) = try withSource(source, content) { readAll($0, maxLineLength: 1 << 20) }
        #expect(result == [Line("a", 1), Line("b", 2)])
        #expect((error as? LineTooLong)?.line == 3)
        #expect((error as? LineTooLong)?.limit == 1 << 20)
    }

    @Test("the default limit is 64 MiB: one byte more is refused")
    func defaultLimit() throws {
        // A sparse file: 64 MiB + 1 zero bytes and no newline, without writing them.
        let (result, error) = try withTemporaryFile([], size: (64 << 20) + 1) { readAll($0) }
        #expect(result.isEmpty)
        #expect((error as? LineTooLong)?.line == 1)
        #expect((error as? LineTooLong)?.limit == 64 << 20)
    }

    @Test("a failing read(2) throws ReadError with errno")
    func readError() {
        let reader = LineReader(fd: -1)
        #expect {
            _ = try reader.next()
        } throws: { error in
            (error as? ReadError)?.code == EBADF && !(error as! ReadError).description.isEmpty
        }
    }
}
