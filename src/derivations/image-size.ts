/** Width and height from a PNG or JPEG header, without decoding pixels; undefined if the header cannot be read. */
export function imageSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.toString('latin1', 12, 16) === 'IHDR') {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) return jpegSize(bytes);
  return undefined;
}

function jpegSize(b: Buffer): { width: number; height: number } | undefined {
  let off = 2;
  while (off + 4 <= b.length) {
    if (b[off] !== 0xff) return undefined;
    const marker = b[off + 1];
    if (marker === 0xff) {
      off++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
      off += 2; // markers without a length
      continue;
    }
    const len = b.readUInt16BE(off + 2);
    // SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (off + 9 > b.length) return undefined;
      return { height: b.readUInt16BE(off + 5), width: b.readUInt16BE(off + 7) };
    }
    off += 2 + len;
  }
  return undefined;
}

/** Refuses an image whose header is unreadable or whose pixel count is over `maxPixels`. */
export function assertDecodable(bytes: Buffer, maxPixels: number): { width: number; height: number } {
  const size = imageSize(bytes);
  if (!size || size.width < 1 || size.height < 1) throw new Error('the image header cannot be read (not a valid PNG or JPEG)');
  if (size.width * size.height > maxPixels) {
    throw new Error(`the image is ${size.width}x${size.height}, over the limit of ${maxPixels} pixels (derivations.max_image_pixels)`);
  }
  return size;
}
