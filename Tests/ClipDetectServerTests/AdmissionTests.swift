@testable import ClipDetectServer
import Testing

/// The queue's admission rule, on numbers: by count always, by the deadline once a pace is known.
@Suite struct AdmissionTests {
    @Test func countBoundHoldsBeforeAnyPass() {
        let admission = Admission(maxQueued: 4, deadline: .seconds(10))
        #expect(admission.refusal(queued: 0, inPass: 0, adding: 4) == nil)
        #expect(admission.refusal(queued: 3, inPass: 8, adding: 1) == nil, "no pace yet: only the count")
        #expect(admission.refusal(queued: 3, inPass: 0, adding: 2) == Full(queued: 3, retryAfter: 1, reason: .queueLimit(adding: 2)))
    }

    @Test func imagesThatWouldMissTheDeadlineAreRefusedWithTheWaitAsRetryAfter() {
        var admission = Admission(maxQueued: 64, deadline: .seconds(10))
        admission.record(.seconds(8), images: 4)  // 2 s an image
        #expect(admission.secondsPerImage == 2)
        // 3 waiting + 1 in the pass + 1 new = 10 s: just within.
        #expect(admission.refusal(queued: 3, inPass: 1, adding: 1) == nil)
        // One more would be done after 12 s: refused, retry when the 5 ahead are done (10 s).
        #expect(admission.refusal(queued: 4, inPass: 1, adding: 1) == Full(queued: 4, retryAfter: 10, reason: .deadline))
        #expect(admission.refusal(queued: 40, inPass: 0, adding: 1)?.retryAfter == 60, "Retry-After is at most a minute")
        // The pace follows recent passes: 0.3 of the new one.
        admission.record(.seconds(4), images: 4)
        #expect(abs((admission.secondsPerImage ?? 0) - 1.7) < 1e-12)
        admission.record(.seconds(1), images: 0)
        #expect(abs((admission.secondsPerImage ?? 0) - 1.7) < 1e-12, "an empty pass says nothing about the pace")
    }

    /// After passes slower than the deadline, an idle queue still takes a request: refusing it would
    /// leave no pass to measure the pace again, and the service would refuse everything for good.
    @Test func anIdleQueueAlwaysTakesARequest() {
        var admission = Admission(maxQueued: 16, deadline: .seconds(5))
        admission.record(.seconds(80), images: 2)  // 40 s an image, eight deadlines
        #expect(admission.refusal(queued: 0, inPass: 0, adding: 1) == nil)
        #expect(admission.refusal(queued: 0, inPass: 0, adding: 16) == nil, "a whole request, when nothing is ahead")
        #expect(admission.refusal(queued: 0, inPass: 0, adding: 17) == Full(queued: 0, retryAfter: 1, reason: .queueLimit(adding: 17)), "but never past the count")
        #expect(admission.refusal(queued: 0, inPass: 1, adding: 1) == Full(queued: 0, retryAfter: 40, reason: .deadline))
    }
}
