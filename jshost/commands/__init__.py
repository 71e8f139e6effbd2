"""The host's own commands (RG.FUNCTION, RG.FCALL, TFUNCTION, TFCALL, ...)."""
