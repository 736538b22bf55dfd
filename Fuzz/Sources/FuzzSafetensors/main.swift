import ClipDetect
import FuzzSupport

/// safetensors headers (and anything else Checkpoint.read sniffs): each input opens or throws; what
/// opens reads within its bounds and describes a tower or says why not.
runFuzzer(FuzzCheckpoint.run)
