import ClipDetect
import FuzzSupport

/// torch.save zip archives (zip64 included) and their pickles through the restricted unpickler.
runFuzzer(FuzzCheckpoint.run)
