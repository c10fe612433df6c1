import Foundation
import PlexCore
import Testing

struct Address: Codable, Hashable, Sendable {
    var street: String
    var number: Int?
}

struct Everything: Codable, Hashable, Sendable {
    var flag: Bool
    var small: Int8
    var negative: Int
    var big: UInt64
    var half: Float
    var real: Double
    var text: String
    var emoji: String
    var missing: String?
    var present: Int?
    var list: [Int]
    var nested: [[String]]
    var map: [String: Address]
    var intKeys: [Int: String]
    var bytes: [UInt8]
    var data: Data
    var addresses: [Address]
    var optionals: [Int?]
    var kind: Kind
    var raw: Raw

    enum Kind: Codable, Hashable, Sendable {
        case plain
        case labelled(x: Int, y: String)
        case unlabelled(Int, Address)
    }

    enum Raw: String, Codable, Hashable, Sendable { case a, b }
}

/// Encodes its fields in the opposite order to its decoder's questions, and with custom keys.
struct Reordered: Codable, Hashable {
    var first: Int
    var second: String

    enum CodingKeys: String, CodingKey { case first = "1st", second = "2nd" }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(second, forKey: .second)
        try container.encode(first, forKey: .first)
    }
}

/// A type that encodes itself as nothing at all.
struct Empty: Codable, Hashable {
    func encode(to encoder: any Encoder) throws {}
    init() {}
    init(from decoder: any Decoder) throws {}
}

struct HasEmpty: Codable, Hashable {
    var before: Int
    var empty: Empty
    var after: Int
}

@Suite("Binary codec")
struct BinaryCodecTests {
    let codec = BinaryMessageCodec()

    static let everything = Everything(
        flag: true, small: -8, negative: -1_234_567_890_123, big: .max, half: 1.5, real: -2.25e100, text: "hello",
        emoji: "grüße 🌍", missing: nil, present: 42, list: [1, -2, 300, Int.min, Int.max],
        nested: [[], ["a"], ["b", "c"]],
        map: ["home": Address(street: "Main", number: 1), "work": Address(street: "Side", number: nil)],
        intKeys: [1: "one", -2: "minus two"], bytes: [0, 1, 255], data: Data([9, 8, 7]),
        addresses: [Address(street: String(repeating: "x", count: 300), number: 7)], optionals: [1, nil, 3],
        kind: .unlabelled(5, Address(street: "s", number: nil)), raw: .b)

    @Test("round-trips every shape Codable produces")
    func roundTrip() throws {
        let bytes = try codec.encode(Self.everything)
        #expect(try codec.decode(Everything.self, from: bytes) == Self.everything)
    }

    @Test(
        "round-trips enum cases",
        arguments: [
            Everything.Kind.plain, .labelled(x: -1, y: ""), .unlabelled(Int.max, Address(street: "q", number: 0)),
        ])
    func enums(kind: Everything.Kind) throws {
        #expect(try codec.decode(Everything.Kind.self, from: codec.encode(kind)) == kind)
    }

    @Test("round-trips top-level primitives and collections")
    func primitives() throws {
        #expect(try codec.decode(Int.self, from: codec.encode(-5)) == -5)
        #expect(try codec.decode(String.self, from: codec.encode("s")) == "s")
        #expect(try codec.decode([String].self, from: codec.encode(["a", "b"])) == ["a", "b"])
        #expect(try codec.decode(Int?.self, from: codec.encode(Int?.none)) == nil)
        #expect(try codec.decode(Bool.self, from: codec.encode(false)) == false)
    }

    @Test("containers longer than 127 bytes get multi-byte lengths")
    func longContainers() throws {
        let long = (0..<500).map { "item-\($0)" }
        #expect(try codec.decode([String].self, from: codec.encode(long)) == long)
        let deep = [[[String(repeating: "z", count: 20_000)]]]
        #expect(try codec.decode([[[String]]].self, from: codec.encode(deep)) == deep)
    }

    @Test("keys are found whatever order they were written in")
    func reordered() throws {
        let value = Reordered(first: 1, second: "two")
        #expect(try codec.decode(Reordered.self, from: codec.encode(value)) == value)
    }

    @Test("a value that encodes nothing still takes its slot")
    func emptyValue() throws {
        let value = HasEmpty(before: 1, empty: Empty(), after: 2)
        #expect(try codec.decode(HasEmpty.self, from: codec.encode(value)) == value)
    }

    @Test("small messages are compact")
    func compact() throws {
        #expect(try codec.encode(Address(street: "Main", number: 1)).count < 25)
        #expect(try codec.encode(7).count == 2)
    }

    @Test("truncated input at every length fails with codecFailure, never traps")
    func truncated() throws {
        let bytes = try codec.encode(Self.everything)
        for length in 0..<bytes.count {
            let error = #expect(throws: CallError.self) {
                _ = try codec.decode(Everything.self, from: Array(bytes.prefix(length)))
            }
            #expect(error?.code == .codecFailure)
        }
    }

    @Test("random garbage fails with codecFailure, never traps")
    func garbage() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            do {
                _ = try codec.decode(Everything.self, from: bytes)
                Issue.record("garbage decoded")
            } catch let error as CallError {
                #expect(error.code == .codecFailure)
            }
        }
    }

    @Test("flipping any single byte never traps")
    func bitFlips() throws {
        let bytes = try codec.encode(Self.everything)
        for index in bytes.indices {
            var copy = bytes
            copy[index] ^= 0xFF
            _ = try? codec.decode(Everything.self, from: copy)
        }
    }

    @Test("type mismatches and trailing bytes are codecFailure")
    func mismatches() throws {
        #expect(throws: CallError.self) { _ = try codec.decode(String.self, from: codec.encode(5)) }
        #expect(throws: CallError.self) { _ = try codec.decode(Int8.self, from: codec.encode(300)) }
        #expect(throws: CallError.self) { _ = try codec.decode(Int.self, from: codec.encode(5) + [0]) }
        #expect(throws: CallError.self) { _ = try codec.decode(Address.self, from: codec.encode(["street": 1])) }
    }

    @Test("JSON codec round-trips the same values")
    func json() throws {
        let json = JSONMessageCodec()
        #expect(try json.decode(Everything.self, from: json.encode(Self.everything)) == Self.everything)
        let error = #expect(throws: CallError.self) { _ = try json.decode(Everything.self, from: Array("{".utf8)) }
        #expect(error?.code == .codecFailure)
    }
}
