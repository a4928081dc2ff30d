package hdlref;

import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.List;

import net.handle.hdllib.AbstractMessage;
import net.handle.hdllib.AbstractRequest;
import net.handle.hdllib.AbstractResponse;
import net.handle.hdllib.AdminRecord;
import net.handle.hdllib.AuthenticationInfo;
import net.handle.hdllib.ChallengeResponse;
import net.handle.hdllib.Common;
import net.handle.hdllib.CreateHandleRequest;
import net.handle.hdllib.DeleteHandleRequest;
import net.handle.hdllib.Encoder;
import net.handle.hdllib.HandleException;
import net.handle.hdllib.HandleResolver;
import net.handle.hdllib.HandleValue;
import net.handle.hdllib.Interface;
import net.handle.hdllib.ModifyValueRequest;
import net.handle.hdllib.ServerInfo;
import net.handle.hdllib.Util;

/**
 * Test driver (agency's tests, not part of ../shared): HS_PUBKEY administration through CNRI's client library.
 *
 * The library subset in hdlclient.jar has no public-key AuthenticationInfo, so this class supplies one: it signs
 * nonce || request digest with the private key, choosing the signature algorithm from the protocol version as
 * CNRI's Util.getDefaultSigId does (SHA-256 from 2.7 on, DSA only from 2.11 on), and sends
 * [hash algorithm id][signature] (CNRI's Util.getHashAlgIdFromSigId names the hash). Everything else (request
 * encoding, the challenge, the answer on a new TCP connection with the challenge's session id) is CNRI's code.
 *
 *   keygen RSA|DSA BITS PRIVATE_KEY_FILE(PKCS#8 DER) PUBLIC_KEY_FILE(Handle's encoding, Util.getBytesFromPublicKey)
 *   create|modify|delete HOST PORT AUTH_HANDLE AUTH_INDEX PRIVATE_KEY_FILE VERSION HANDLE [INDEX:TYPE:DATA]...
 *
 * Prints "responseCode <n>" (or "exception ..."); exit 0 on RC_SUCCESS, 1 otherwise.
 */
public class PubkeyAdmin {
    static final class PublicKeyAuth extends AuthenticationInfo {
        final byte[] handle;
        final int index;
        final PrivateKey key;
        String lastSignatureAlgorithm;

        PublicKeyAuth(byte[] handle, int index, PrivateKey key) {
            this.handle = handle;
            this.index = index;
            this.key = key;
        }

        @Override public byte[] getAuthType() { return Common.PUBLIC_KEY_TYPE; }
        @Override public byte[] getUserIdHandle() { return handle; }
        @Override public int getUserIdIndex() { return index; }

        @Override
        public byte[] authenticate(ChallengeResponse challenge, AbstractRequest request) throws HandleException {
            int major = challenge.majorProtocolVersion, minor = challenge.minorProtocolVersion;
            if (challenge.hasEqualOrGreaterVersion(challenge.suggestMajorProtocolVersion, challenge.suggestMinorProtocolVersion)) {
                major = challenge.suggestMajorProtocolVersion;
                minor = challenge.suggestMinorProtocolVersion;
            }
            boolean from27 = major > 2 || (major == 2 && minor >= 7);
            boolean from211 = major > 2 || (major == 2 && minor >= 11);
            String alg = key.getAlgorithm();
            String sigId = from27 && (from211 || !alg.equals("DSA")) ? "SHA256with" + alg : "SHA1with" + alg;
            lastSignatureAlgorithm = sigId;
            try {
                Signature sig = Signature.getInstance(sigId);
                sig.initSign(key);
                sig.update(challenge.nonce);
                sig.update(challenge.requestDigest);
                byte[] signature = sig.sign();
                byte[] hashId = Util.getHashAlgIdFromSigId(sigId);
                byte[] out = new byte[2 * Encoder.INT_SIZE + hashId.length + signature.length];
                int offset = Encoder.writeByteArray(out, 0, hashId);
                Encoder.writeByteArray(out, offset, signature);
                return out;
            } catch (HandleException e) {
                throw e;
            } catch (Exception e) {
                throw new HandleException(HandleException.MISSING_OR_INVALID_SIGNATURE, "cannot sign: " + e);
            }
        }
    }

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    static int run(String[] argv) {
        try {
            if (argv[0].equals("keygen")) {
                KeyPairGenerator generator = KeyPairGenerator.getInstance(argv[1]);
                generator.initialize(Integer.parseInt(argv[2]));
                KeyPair pair = generator.generateKeyPair();
                Files.write(Paths.get(argv[3]), pair.getPrivate().getEncoded());
                Files.write(Paths.get(argv[4]), Util.getBytesFromPublicKey(pair.getPublic()));
                return 0;
            }
            String op = argv[0];
            InetAddress addr = InetAddress.getByName(argv[1]);
            int port = Integer.parseInt(argv[2]);
            byte[] authHandle = Util.encodeString(argv[3]);
            int authIndex = Integer.parseInt(argv[4]);
            byte[] der = Files.readAllBytes(Paths.get(argv[5]));
            String version = argv[6];
            byte[] handle = Util.encodeString(argv[7]);
            PrivateKey key = null;
            for (String alg : new String[] { "RSA", "DSA" }) {
                try {
                    key = KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
                    break;
                } catch (java.security.spec.InvalidKeySpecException e) {
                    // try the next algorithm
                }
            }
            if (key == null) throw new IllegalArgumentException("not a PKCS#8 RSA or DSA private key: " + argv[5]);
            PublicKeyAuth auth = new PublicKeyAuth(authHandle, authIndex, key);
            int now = (int) (System.currentTimeMillis() / 1000);
            List<HandleValue> values = new ArrayList<>();
            for (int i = 8; i < argv.length; i++) {
                String[] parts = argv[i].split(":", 3);
                values.add(new HandleValue(Integer.parseInt(parts[0]), Util.encodeString(parts[1]), Util.encodeString(parts[2]),
                                           HandleValue.TTL_TYPE_RELATIVE, 86400, now, null, true, true, true, false));
            }
            AbstractRequest req;
            if (op.equals("create")) {
                AdminRecord admin = new AdminRecord(authHandle, authIndex, true, true, true, true, true, true, true, true, true, true, true, true);
                values.add(new HandleValue(100, Common.STD_TYPE_HSADMIN, Encoder.encodeAdminRecord(admin), HandleValue.TTL_TYPE_RELATIVE, 86400, now, null, true, true, true, false));
                req = new CreateHandleRequest(handle, values.toArray(new HandleValue[0]), auth);
            } else if (op.equals("modify")) {
                req = new ModifyValueRequest(handle, values.toArray(new HandleValue[0]), auth);
            } else if (op.equals("delete")) {
                req = new DeleteHandleRequest(handle, auth);
            } else {
                throw new IllegalArgumentException("unknown operation " + op);
            }
            HdlRefSupport.applyVersion(req, version);
            HandleResolver resolver = HdlRefSupport.newResolver(10000, false);
            ServerInfo server = HdlRefSupport.serverInfoFor(addr, port, Interface.SP_HDL_TCP, 1);
            resolver.setPreferredProtocols(new int[] { Interface.SP_HDL_TCP });
            AbstractResponse resp = resolver.sendRequestToServer(req, server);
            System.out.println("signature\t" + auth.lastSignatureAlgorithm);
            System.out.println("responseCode\t" + (resp == null ? -1 : resp.responseCode));
            return resp != null && resp.responseCode == AbstractMessage.RC_SUCCESS ? 0 : 1;
        } catch (Exception e) {
            System.out.println("exception\t" + e.toString().replace('\n', ' '));
            return 1;
        }
    }
}
