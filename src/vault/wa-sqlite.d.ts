// Types for the parts of @journeyapps/wa-sqlite that its own typings leave out.
declare module '@journeyapps/wa-sqlite/src/FacadeVFS.js' {
  export class FacadeVFS {
    constructor(name: string, module: unknown);
    /** The Emscripten module (its HEAPU8 is re-created when WASM memory grows). */
    _module: { HEAPU8: Uint8Array };
    name: string;
    mxPathname: number;
    close(): void;
    getFilename(pFile: number): string;
    jOpen(...args: any[]): number;
    jDelete(...args: any[]): number;
    jAccess(...args: any[]): number;
    jFullPathname(filename: string, zOut: Uint8Array): number;
    jClose(...args: any[]): number;
    xRead(pFile: number, pData: number, iAmt: number, iOffsetLo: number, iOffsetHi: number): number;
    xWrite(pFile: number, pData: number, iAmt: number, iOffsetLo: number, iOffsetHi: number): number;
    jRead(...args: any[]): number;
    jWrite(...args: any[]): number;
    jTruncate(...args: any[]): number;
    jSync(...args: any[]): number;
    jFileSize(...args: any[]): number;
    jLock(...args: any[]): number;
    jUnlock(...args: any[]): number;
    jCheckReservedLock(...args: any[]): number;
    jSectorSize(...args: any[]): number;
    jDeviceCharacteristics(...args: any[]): number;
  }
}
