import BPFTreeCore
import Testing

/// What the program image cache stores: the image's bytes and the key they are kept under.
@Suite struct ProgramImageCodingTests {
    static let image = ProgramImage(tag: 0x0123_4567_89ab_cdef, type: 8, expectedAttachType: 1, name: "count_egress",
                                    objectMaps: ["counters": ObjectMap(type: 9, keySize: 8, valueSize: 16),
                                                 "é": ObjectMap(type: 1, keySize: 4, valueSize: 8)],
                                    section: "cgroup_skb/egress")

    @Test func anImageReadsBackAsWrittenWithPaddingAfterIt() {
        let bytes = Self.image.encoded
        #expect(ProgramImage(decoding: bytes) == Self.image)
        #expect(ProgramImage(decoding: bytes + [UInt8](repeating: 0, count: 4096 - bytes.count)) == Self.image)
        #expect(ProgramImage(decoding: ProgramImage(tag: 1, type: 2, expectedAttachType: 3, name: "").encoded)
                == ProgramImage(tag: 1, type: 2, expectedAttachType: 3, name: ""))
    }

    @Test func aCutOrGarbledImageReadsAsNone() {
        let bytes = Self.image.encoded
        for length in 0..<bytes.count {
            #expect(ProgramImage(decoding: Array(bytes.prefix(length))) == nil, "cut at \(length)")
        }
        #expect(ProgramImage(decoding: [UInt8](repeating: 0xff, count: 4096)) == nil)
        var longer = bytes
        longer[0] &+= 1  // a length one byte past the fields
        #expect(ProgramImage(decoding: longer + [0]) == nil)
    }

    @Test func theKeyChangesWithEveryPartOfTheLoad() {
        func key(object: [UInt8] = [1, 2, 3], program: String = "p", type: ProgramType? = .cgroupSKB,
                 attach: AttachType? = nil, environment: [String] = ["kernel 6.18"]) -> [UInt8] {
            ProgramImage.cacheKey(object: object, program: program, type: type, attachType: attach, environment: environment)
        }
        let base = key()
        #expect(key() == base && base.count == 32)
        let others = [key(object: [1, 2, 4]), key(program: "q"), key(type: nil), key(attach: .cgroupInetEgress),
                      key(environment: ["kernel 6.19"]), key(environment: ["kernel 6.18", "token none"]),
                      // Fields are length-prefixed: moving a byte from one to the next is another key.
                      key(object: [1, 2, 3, 0x70], program: "")]
        #expect(Set(others + [base]).count == others.count + 1)
    }
}
