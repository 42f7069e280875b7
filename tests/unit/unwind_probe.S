/*
 * unwind_probe.S — probe_call(cb, arg) calls cb(arg) from a frame of
 * FRAME + 16 bytes. Built twice as modules (tests/unit/meson.build),
 * FRAME 0x100 and 0x1000: the two have the same code and unwind-table
 * layout byte for byte (the immediates and the ULEB128 offsets are the same
 * size) and differ only in the frame, so when one is unloaded and the
 * other loaded at the same address, the call's return address is the same
 * and only a rule decoded afresh finds the caller.
 */
    .text
    .globl probe_call
    .type probe_call, @function
probe_call:
    .cfi_startproc
    push %rbx
    .cfi_def_cfa_offset 16
    .cfi_offset %rbx, -16
    sub $FRAME, %rsp
    .cfi_def_cfa_offset FRAME + 16
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    add $FRAME, %rsp
    .cfi_def_cfa_offset 16
    pop %rbx
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size probe_call, . - probe_call

    .section .note.GNU-stack, "", @progbits
