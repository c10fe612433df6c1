import Foundation
import Testing

@testable import PlexCore

/// The shapes a JSON request takes: an enum with payloads (the counter's), nested values, optionals, maps.
struct Order: Codable, Hashable, Sendable {
    var id: Int
    var customer: String
    var total: Double
    var paid: Bool
    var note: String?
    var lines: [Line]
    var tags: [String: Int]
    var status: Status
    var kind: Kind

    struct Line: Codable, Hashable, Sendable {
        var sku: String
        var quantity: UInt8
        var discount: Int64?
    }

    enum Status: String, Codable, Hashable, Sendable { case open, closed }

    enum Kind: Codable, Hashable, Sendable {
        case plain
        case gift(to: String, wrapped: Bool)
        case split(Int, [Int?])
    }
}

struct Small: Codable, Hashable, Sendable {
    var a: Int8
    var b: UInt
}

struct WithData: Codable, Hashable, Sendable {
    var name: String
    var data: Data
}

struct WithDate: Codable, Hashable, Sendable {
    var at: Date
}

struct WithFloat: Codable, Hashable, Sendable {
    var x: Float
}

@Suite("JSON codec: the fast paths beside Foundation")
struct JSONFastPathTests {
    /// What the fast path gives (`nil`: it gave up) and what Foundation gives (`nil`: an error).
    static func both<T: Decodable & Equatable>(_ type: T.Type, _ text: String) -> (fast: T?, foundation: T?) {
        let bytes = Array(text.utf8)
        let fast = bytes.withUnsafeBytes { try? JSONTapeDecoder.decode(T.self, from: $0) }
        let foundation = try? JSONDecoder().decode(T.self, from: Data(bytes))
        return (fast, foundation)
    }

    static let order = #"""
        {"id": 7, "customer": "ada", "total": 12.5, "paid": false, "note": null,
         "lines": [{"sku": "a-1", "quantity": 3}, {"sku": "b\"2\\n\/", "quantity": 255, "discount": -9223372036854775807}],
         "tags": {"x": 1, "y": -2}, "status": "closed", "kind": {"split": {"_0": 4, "_1": [1, null, 3]}},
         "ignored": {"deep": [[], {}, [true, false, null, 1e5, -0.25]]}}
        """#

    @Test("the fast path decodes plain JSON to exactly Foundation's values")
    func sameValues() throws {
        for text in [
            Self.order,
            #"{"id":1,"customer":"","total":0,"paid":true,"lines":[],"tags":{},"status":"open","kind":{"plain":{}}}"#,
            #"{"id":-1,"customer":"c","total":1E+2,"paid":true,"lines":[],"tags":{},"status":"open","kind":{"gift":{"to":"b","wrapped":true}}}"#,
            " \t\r\n{\"id\":0,\"customer\":\"x\",\"total\":-3.0e-2,\"paid\":true,\"note\":\"n\",\"lines\":[],\"tags\":{},\"status\":\"open\",\"kind\":{\"plain\":{}}} \n",
        ] {
            let (fast, foundation) = Self.both(Order.self, text)
            #expect(fast != nil, "the fast path takes \(text)")
            #expect(fast == foundation)
        }
        #expect(Self.both(Int.self, "42") == (42, 42), "a top-level number")
        #expect(Self.both(String.self, #""top""#) == ("top", "top"))
        #expect(Self.both([Double].self, "[0.1, 2, 1.7976931348623157e308]").fast == [0.1, 2, 1.7976931348623157e308])
        let counter = Array(#"{"increment":{}}"#.utf8).withUnsafeBytes {
            try? JSONTapeDecoder.decode(Order.Kind.self, from: $0)
        }
        #expect(counter == nil, "an unknown case is Foundation's to report")
        #expect(Self.both(Order.Kind.self, #"{"plain":{}}"#) == (.plain, .plain))
    }

    @Test(
        "the fast path gives up where Foundation fails or decodes its own way, so Foundation's answer stands",
        arguments: [
            #"{"a": 1, "b": 2"#, #"{"a": 1, "b": 2} x"#, #"{"a": 1 "b": 2}"#, #"{"a": 1, "b": 2,}"#, "", " ",
            #"{"a": 01, "b": 2}"#, #"{"a": 1., "b": 2}"#, #"{"a": .5, "b": 2}"#, #"{"a": +1, "b": 2}"#,
            #"{"a": 1.0, "b": 2}"#, #"{"a": 1e2, "b": 2}"#, #"{"a": 128, "b": 2}"#, #"{"a": -0, "b": 2}"#,
            #"{"a": 1, "b": -2}"#, #"{"a": 1, "b": 18446744073709551616}"#, #"{"a": "1", "b": 2}"#,
            #"{"a": 1}"#, #"{"a": 1, "b": null}"#, #"{"a": 1, "a": 2, "b": 3}"#, #"{"a": 1, "b": 2, "\u0062": 3}"#,
            #"{"a": 1, "b": 2, "c": "\u00e9"}"#, "{\"a\": 1, \"b\": 2, \"c\": \"é\"}", #"{"a": 1, "b": 2, "c": "\x"}"#,
            "{\"a\": 1, \"b\": 2, \"c\": \"tab\there\"}", #"{"a": 1, "b": 2, "c": tru}"#, #"{'a': 1, "b": 2}"#,
            String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
        ])
    func givesUp(text: String) {
        let (fast, foundation) = Self.both(Small.self, text)
        #expect(fast == nil, "the fast path gives up on \(text)")
        // Whatever Foundation makes of it is the codec's answer.
        let codec = JSONMessageCodec()
        let viaCodec = Array(text.utf8).withUnsafeBytes { try? codec.decode(Small.self, from: $0) }
        #expect(viaCodec == foundation)
    }

    @Test("Data, Date and Float go to Foundation, which decodes them its own way")
    func foundationTypes() throws {
        let codec = JSONMessageCodec()
        var bytes: [UInt8] = []
        let data = WithData(name: "n", data: Data([1, 2, 3]))
        try codec.encode(data, into: &bytes)
        #expect(bytes.withUnsafeBytes { try? JSONTapeDecoder.decode(WithData.self, from: $0) } == nil)
        #expect(try bytes.withUnsafeBytes { try codec.decode(WithData.self, from: $0) } == data)
        #expect(
            Self.both(WithDate.self, #"{"at": 1.5}"#) == (nil, WithDate(at: Date(timeIntervalSinceReferenceDate: 1.5))))
        #expect(Self.both(WithFloat.self, #"{"x": 0.1}"#) == (nil, WithFloat(x: 0.1)))
    }

    @Test("a malformed or mismatched request still gets Foundation's error")
    func errors() {
        let codec = JSONMessageCodec()
        for text in [#"{"a": 1, "b": }"#, #"{"a": 1}"#, #"{"a": "x", "b": 2}"#] {
            var foundation = ""
            do {
                _ = try JSONDecoder().decode(Small.self, from: Data(text.utf8))
            } catch {
                foundation = String(describing: error)
            }
            #expect(!foundation.isEmpty)
            #expect {
                try Array(text.utf8).withUnsafeBytes { try codec.decode(Small.self, from: $0) }
            } throws: { error in
                guard let error = error as? CallError else { return false }
                return error.code == .codecFailure && error.message.contains(foundation)
            }
        }
    }

    /// An `Int` if it reads as one, else a `Double`: its `init(from:)` catches the first attempt's error.
    enum Number: Decodable, Equatable {
        case int(Int), double(Double)
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let int = try? container.decode(Int.self) {
                self = .int(int)
            } else {
                self = .double(try container.decode(Double.self))
            }
        }
    }

    /// Fields that fall back to nil on any error.
    struct Lenient: Decodable, Equatable {
        var float: Float?
        var date: Date?
        var big: Int64?
        enum CodingKeys: String, CodingKey { case float = "f", date = "d", big }
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            float = try? container.decode(Float.self, forKey: .float)
            date = try? container.decode(Date.self, forKey: .date)
            big = try? container.decode(Int64.self, forKey: .big)
        }
    }

    /// Records where it was decoded.
    struct Located: Decodable, Equatable {
        struct Inner: Decodable, Equatable {
            var path: String
            init(from decoder: any Decoder) throws {
                path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
            }
        }
        var inner: Inner
    }

    /// Asks for a null past the end of its array (Foundation throws).
    struct NullPastEnd: Decodable, Equatable {
        var null: Bool
        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            _ = try container.decode(Int.self)
            null = try container.decodeNil()
        }
    }

    /// Looks up a key written with the Kelvin sign, which Swift's strings equal to "K".
    struct Kelvin: Decodable, Equatable {
        var value: Int?
        struct Key: CodingKey {
            var stringValue: String
            init?(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }
        init(from decoder: any Decoder) throws {
            value = try decoder.container(keyedBy: Key.self).decodeIfPresent(
                Int.self, forKey: Key(stringValue: "\u{212A}")!)
        }
    }

    /// The codec's outcome for `text` against Foundation's alone.
    static func codecAndFoundation<T: Decodable & Equatable>(_ type: T.Type, _ text: String) -> (
        codec: T?, foundation: T?
    ) {
        let bytes = Array(text.utf8)
        return (
            bytes.withUnsafeBytes { try? JSONMessageCodec().decode(T.self, from: $0) },
            try? JSONDecoder().decode(T.self, from: Data(bytes))
        )
    }

    @Test("an error a type catches in its init(from:) still sends the message to Foundation")
    func caughtGiveUps() {
        for text in ["1.0", "1e2", "-0", "-9223372036854775808", "2.5", "7"] {
            let (codec, foundation) = Self.codecAndFoundation(Number.self, text)
            #expect(codec == foundation, "\(text)")
        }
        #expect(Self.codecAndFoundation(Number.self, "1.0").codec == .int(1))
        let lenient = Self.codecAndFoundation(Lenient.self, #"{"f":1.5,"d":0,"big":-9223372036854775808}"#)
        #expect(lenient.codec == lenient.foundation)
        #expect(lenient.codec?.big == Int64.min)
        let located = Self.codecAndFoundation(Located.self, #"{"inner":{}}"#)
        #expect(located.codec == located.foundation)
        #expect(located.codec?.inner.path == "inner", "the real coding path, from Foundation")
        let pastEnd = Self.codecAndFoundation(NullPastEnd.self, "[1]")
        #expect(pastEnd.codec == nil && pastEnd.foundation == nil, "an error, as Foundation gives")
        let kelvin = Self.codecAndFoundation(Kelvin.self, #"{"K":5}"#)
        #expect(kelvin.codec == kelvin.foundation)
        #expect(kelvin.codec?.value == 5)
        let sameNumber = Array(#"{"1":"a","01":"b"}"#.utf8).withUnsafeBytes {
            try? JSONTapeDecoder.decode([Int: String].self, from: $0)
        }
        #expect(sameNumber == nil, "two keys of one number are Foundation's to resolve")
    }

    // MARK: Encoding

    /// The fast encoder's bytes (`nil`: it gave up) and Foundation's, as the codec configures it.
    static func encodings<T: Encodable>(_ value: T) -> (fast: String?, foundation: String?) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (
            JSONTreeEncoder.encode(value).map { String(decoding: $0, as: UTF8.self) },
            (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
        )
    }

    struct Reply: Codable, Hashable, Sendable {
        var count: Int
        var owner: String?
        var history: [Int8]
        var flags: [String: Bool]
        var nested: [[UInt64]]
        var kind: Order.Kind
        var status: Order.Status
    }

    struct Empty: Codable, Hashable {}

    /// Encodes one key twice: Foundation keeps the last.
    struct Twice: Encodable {
        enum K: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: K.self)
            try container.encode(1, forKey: .a)
            try container.encode(2, forKey: .a)
        }
    }

    /// Encodes nothing at all.
    struct Nothing: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    struct HasNothing: Encodable {
        var x = Nothing()
        var y = 1
    }

    @Test("the fast encoder writes Foundation's bytes: sorted keys, escapes, integers, enums, optionals")
    func sameBytes() {
        let reply = Reply(
            count: -42, owner: "ad\"a/\\\u{1}\u{8}\t\n\u{c}\r\u{7f}é\u{2028}", history: [-128, 0, 127],
            flags: ["zeta": true, "Alpha": false, "_x": true, "a10": false, "a9": true],
            nested: [[], [UInt64.max, 0]], kind: .split(4, [1, nil, 3]), status: .closed)
        for value in [
            reply, Reply(count: 0, owner: nil, history: [], flags: [:], nested: [], kind: .plain, status: .open),
            Reply(
                count: Int.min, owner: "", history: [1], flags: ["k": true], nested: [[1]],
                kind: .gift(to: "x", wrapped: false), status: .open),
        ] {
            let (fast, foundation) = Self.encodings(value)
            #expect(fast != nil, "the fast path takes \(value)")
            #expect(fast == foundation)
        }
        #expect(Self.encodings([Empty()]) == ("[{}]", "[{}]"))
        #expect(Self.encodings(HasNothing()) == (#"{"x":{},"y":1}"#, #"{"x":{},"y":1}"#))
        #expect(Self.encodings("top") == (#""top""#, #""top""#))
        #expect(Self.encodings(Int64.min) == ("-9223372036854775808", "-9223372036854775808"))
        #expect(Self.encodings([1, nil, 3] as [Int?]) == ("[1,null,3]", "[1,null,3]"))
        let numbers: [Double] = [
            0, -0.0, 1, 0.1, 1e20, 1e-7, 1e16, 3e15, 123456789.125, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
        ]
        #expect(Self.encodings(numbers).fast == Self.encodings(numbers).foundation)
        #expect(
            Self.encodings(numbers).fast
                == "[0,-0,1,0.1,1e+20,1e-07,1e+16,3000000000000000,123456789.125,5e-324,1.7976931348623157e+308]")
        #expect(Self.encodings(WithFloat(x: 0.1)) == (#"{"x":0.1}"#, #"{"x":0.1}"#))
        let random = (0..<2_000).map { _ in Double(bitPattern: UInt64.random(in: 0...UInt64.max)) }.filter(\.isFinite)
        #expect(Self.encodings(random).fast == Self.encodings(random).foundation)
    }

    @Test("the fast encoder gives up where Foundation writes its own way, and the codec writes Foundation's bytes")
    func encoderGivesUp() throws {
        let codec = JSONMessageCodec()
        func check<T: Encodable>(_ value: T) throws {
            let (fast, foundation) = Self.encodings(value)
            #expect(fast == nil, "the fast path gives up on \(value)")
            var bytes: [UInt8] = []
            if let foundation {
                try codec.encode(value, into: &bytes)
                #expect(String(decoding: bytes, as: UTF8.self) == foundation)
            } else {
                #expect(throws: CallError.self) { try codec.encode(value, into: &bytes) }
            }
        }
        try check(Twice())
        try check(Nothing())
        try check([1.5, .infinity])
        try check(WithFloat(x: .nan))
        try check(WithData(name: "n", data: Data([1, 2])))
        try check(WithDate(at: Date(timeIntervalSinceReferenceDate: 3)))
        try check(["é": 1])
    }
}
