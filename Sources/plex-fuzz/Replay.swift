import Foundation

/// The fuzz targets without libFuzzer: over the files given, then over random mutations of them for a while.
enum Replay {
    static func main(_ arguments: [String]) -> Int32 {
        var rest = Array(arguments.dropFirst())
        guard let name = rest.first, let target = targets[name] else {
            print(
                "usage: plex-fuzz TARGET [--seconds N] FILE|DIR…   (targets: \(targets.keys.sorted().joined(separator: ", ")))"
            )
            return 2
        }
        rest.removeFirst()
        if let flag = rest.firstIndex(of: "--write-seeds"), flag + 1 < rest.count {
            // The built-in seeds as files, for a libFuzzer corpus (scripts/fuzz.sh).
            let directory = rest[flag + 1]
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (index, seed) in builtInSeeds(name).enumerated() {
                _ = FileManager.default.createFile(atPath: "\(directory)/seed-\(name)-\(index)", contents: Data(seed))
            }
            return 0
        }
        var seconds = 0.0
        if let flag = rest.firstIndex(of: "--seconds"), flag + 1 < rest.count, let value = Double(rest[flag + 1]) {
            seconds = value
            rest.removeSubrange(flag...(flag + 1))
        }
        var inputs: [[UInt8]] = []
        for path in rest {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                print("plex-fuzz: no such file or directory: \(path)")
                return 2
            }
            let files =
                isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                if let data = FileManager.default.contents(atPath: file) { inputs.append(Array(data)) }
            }
        }
        inputs += builtInSeeds(name)
        if inputs.isEmpty { inputs = [[]] }
        for input in inputs { input.withUnsafeBytes { target($0) } }
        var generator = SystemRandomNumberGenerator()
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        var runs = inputs.count
        while clock.now < end {
            for _ in 0..<256 {
                let mutated = mutate(inputs.randomElement(using: &generator)!, inputs, using: &generator)
                mutated.withUnsafeBytes { target($0) }
                runs += 1
            }
        }
        print("plex-fuzz \(name): \(runs) inputs (\(inputs.count) given), no crash")
        return 0
    }

    /// One to eight random edits of `input`: flipped bits, random, inserted, deleted or boundary bytes, a
    /// splice with another input.
    static func mutate(_ input: [UInt8], _ all: [[UInt8]], using generator: inout some RandomNumberGenerator)
        -> [UInt8]
    {
        var bytes = input
        for _ in 0..<Int.random(in: 1...8, using: &generator) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<6, using: &generator) {
            case 0 where !bytes.isEmpty: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
            case 1 where !bytes.isEmpty: bytes[position] = UInt8.random(in: 0...255, using: &generator)
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
            case 3 where !bytes.isEmpty: bytes.remove(at: position)
            case 4 where !bytes.isEmpty: bytes[position] = [0, 1, 0x7F, 0x80, 0xFF].randomElement(using: &generator)!
            default:
                let other = all.randomElement(using: &generator)!
                bytes = Array(bytes.prefix(position)) + Array(other.dropFirst(min(position, other.count)))
            }
        }
        return bytes
    }
}
