internal import Foundation

/// JSON written the same way everywhere the gateway and the CLI print it: sorted keys, slashes unescaped.
enum JSONOutput {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// `object` (built of dictionaries, arrays, strings and numbers) as JSON.
    static func render(_ object: Any) -> [UInt8] {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return Array("{}".utf8) }
        return Array(data)
    }
}

/// Where a request body stops being JSON.
enum JSONSyntax {
    /// What is wrong with `bytes` as JSON, with its position; `nil` when it is JSON.
    static func error(in bytes: [UInt8]) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            return nil
        } catch {
            let described = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            // Foundation names the character where a value goes wrong, but not where the body ended too soon.
            return described.contains("character") ? described : "\(described) (at byte \(bytes.count), its end)"
        }
    }
}
